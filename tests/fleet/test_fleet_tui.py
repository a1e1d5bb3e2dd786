"""The Fleet screen of `introspect top --prometheus` (Textual pilot), against the fleet of
conftest.py: Enter on a local instance attaches to it and opens its Tasks view; Enter on one
with no reachable agent opens its metrics page from PromQL; `/` filters the rows."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, TabbedContent

from introspect.fleet.api import PrometheusAPI
from introspect.fleet.queries import FleetQueries
from introspect.fleet.refresh import FleetSource
from introspect.tui.fleet_app import FleetApp
from tests.fleet.conftest import JOB, ROLES, Fleet
from tests.tui.support import poll, poll_text, run, screen_text

SIZE = (200, 50)


def fleet_app(fleet: Fleet) -> FleetApp:
    source = FleetSource(PrometheusAPI(fleet.prom.url), FleetQueries(f'job="{JOB}"'))
    return FleetApp(source, refresh=2.0)


async def wait_for_rows(pilot: Any, fleet: Fleet) -> Any:
    app = pilot.app
    await poll(pilot, lambda: app.screen.id == "fleet" and app.screen.report is not None
               and len(app.screen.report.instances) == len(ROLES), "the fleet's rows",
               timeout=60)
    return app.screen


async def open_row(pilot: Any, fleet: Fleet, name: str) -> None:
    screen = await wait_for_rows(pilot, fleet)
    index = next(i for i, inst in enumerate(screen.shown)
                 if inst.instance == fleet.address[name])
    table = screen.query_one("#fleet-table", DataTable)
    table.focus()
    table.move_cursor(row=index)
    await pilot.pause()
    await pilot.press("enter")


@pytest.mark.timeout(180)
def test_enter_attaches_to_a_local_agent_and_shows_its_tasks(fleet: Fleet) -> None:
    async def scenario() -> None:
        app = fleet_app(fleet)
        async with app.run_test(size=SIZE) as pilot:
            await poll_text(pilot, "Fleet: 20 instances", timeout=60)
            await poll_text(pilot, "refresh every 2s")
            await open_row(pilot, fleet, "healthy-03")
            pid = fleet.pid("healthy-03")
            await poll(pilot, lambda: app.screen.id != "fleet"
                       and app.query_one("#views", TabbedContent).active == "tasks"
                       and app.model.snapshot is not None
                       and app.model.snapshot.node.pid == pid, "attached to healthy-03")
            await poll_text(pilot, "idle_worker")
            assert f"pid {pid}" in screen_text(app)
            await pilot.press("f")
            await poll(pilot, lambda: app.screen.id == "fleet", "back on the fleet")
            await pilot.press("q")

    run(scenario())


@pytest.mark.timeout(180)
def test_enter_without_a_reachable_agent_opens_the_metrics_page(
        fleet: Fleet, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty runtime dir: no local agent is found, as on a host the TUI does not run on.
    monkeypatch.setenv("INTROSPECT_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("INTROSPECT_TARGETS_FILE", str(tmp_path / "none.toml"))

    async def scenario() -> None:
        app = fleet_app(fleet)
        async with app.run_test(size=SIZE) as pilot:
            screen = await wait_for_rows(pilot, fleet)
            # `/` filters the rows: the crash-looping one by its port, then Enter on it
            await pilot.press("slash", *fleet.address["crashloop"].split(":")[1], "enter")
            await poll(pilot, lambda: [i.instance for i in screen.shown]
                       == [fleet.address["crashloop"]], "the filter to leave one row")
            await poll_text(pilot, "1 shown")
            await pilot.press("enter")
            await poll_text(pilot, "metrics from Prometheus (no agent attached)")
            text = await poll_text(pilot, "__main__.crashing_worker")
            assert "CRASHES BY KIND" in text and "No agent found" in text
            assert "instance = \"" + fleet.address["crashloop"] in text
            await pilot.press("escape")
            await poll(pilot, lambda: app.screen.id == "fleet", "back on the fleet")
            await pilot.press("slash", "escape")  # Esc in the filter box clears it
            await poll(pilot, lambda: len(screen.shown) == len(ROLES), "every row again")
            await open_row(pilot, fleet, "doomed")
            await poll_text(pilot, "scrape: DOWN")
            await pilot.press("escape")
            await pilot.press("q")

    run(scenario())
