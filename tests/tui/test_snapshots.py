"""Screens of the main views, from the committed recording (deterministic: every value and age
comes from the recording's own clock). Update with `pytest --snapshot-update` after a reviewed
change of the screens."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from textual.pilot import Pilot

from introspect.protocol import messages as m
from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from introspect.tui.views.exact import ExactScreen
from introspect.tui.views.tasks import TasksView
from introspect.tui.views.tree import TreeView
from tests.tui.support import RECORDING, poll

pytestmark = pytest.mark.usefixtures("utc")  # the replay header shows the frame's clock time


def replay_app(view: str) -> IntrospectApp:
    recording = read_recording(RECORDING)
    return IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                         replay_playing=False, initial_view=view)


async def settle(pilot: Pilot[Any]) -> None:
    """Views that ask their source (tasks, tree) fill in a worker: wait for it."""
    app = pilot.app
    view = app.active_view()
    if isinstance(view, TasksView):
        await poll(pilot, lambda: view.page is not None, "task page")
    if isinstance(view, TreeView):
        await poll(pilot, lambda: view.query_one("#task-tree").root.children, "tree")
    await pilot.pause()


@pytest.mark.parametrize("view", ["system", "load", "tasks", "tree", "queues", "threads",
                                  "memory", "errors", "metrics"])
def test_view_screens(view: str, snap_compare: Any) -> None:
    assert snap_compare(replay_app(view), terminal_size=(100, 30), run_before=settle)


def test_tasks_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(replay_app("tasks"), terminal_size=(80, 24), run_before=settle)


def test_task_grouping_by_kind(snap_compare: Any) -> None:
    assert snap_compare(replay_app("tasks"), terminal_size=(100, 30), press=["g"],
                        run_before=settle)


def test_traceback_page(snap_compare: Any) -> None:
    assert snap_compare(replay_app("errors"), terminal_size=(100, 30), press=["enter"],
                        run_before=settle)


# A finished report as the agent sends it (two kinds, three tasks; a hostile task name).
EXACT_REPORT = msgspec.convert({
    "started": 1700000000.0, "seconds": 30.0, "elapsed": 30.004, "running": False,
    "implementation": "c",
    "tasks": [
        {"id": 12, "name": "worker-1", "kind": "app.worker", "steps": 1500,
         "busy_seconds": 0.75, "delay_seconds_total": 0.3, "delay_max_seconds": 0.012},
        {"id": 13, "name": "\x1b[31mred\x1b[0m [bold]x[/bold]", "kind": "app.worker",
         "steps": 900, "busy_seconds": 0.27, "delay_seconds_total": 0.09,
         "delay_max_seconds": 0.004},
        {"id": 7, "name": "ticker", "kind": "app.ticker", "steps": 300,
         "busy_seconds": 0.003, "delay_seconds_total": 0.006, "delay_max_seconds": 0.0005},
    ],
    "kinds": {
        "app.ticker": {"steps": 300, "busy_seconds": 0.003, "delay_seconds_total": 0.006,
                       "busy_histogram": [[1.6e-05, 290], [3.2e-05, 10]],
                       "delay_histogram": [[3.2e-05, 280], [0.000512, 20]]},
        "app.worker": {"steps": 2400, "busy_seconds": 1.02, "delay_seconds_total": 0.39,
                       "busy_histogram": [[0.000256, 2000], [0.001024, 380], [0.004096, 20]],
                       "delay_histogram": [[0.000128, 2300], [0.016384, 100]]},
    },
    "callbacks": {"steps": 4200, "busy_seconds": 0.021},
}, m.ExactSessionReport)


def test_exact_page(snap_compare: Any) -> None:
    async def open_page(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.app.push_screen(ExactScreen(30.0, report=EXACT_REPORT, poll=False))
        await pilot.pause()

    assert snap_compare(replay_app("tasks"), terminal_size=(100, 30), run_before=open_page)


async def queue_page(pilot: Pilot[Any]) -> None:
    """The recording predates queue owners: give its longest queue some, then open its page."""
    app = pilot.app
    longest = max(app.model.snapshot.queues, key=lambda q: q.length)
    longest.bound_to = "MediaGateway.inbox"
    longest.consumers = ["introspect.demo.bottleneck.gateway_consumer"]
    longest.producers = ["introspect.demo.bottleneck.camera_feed",
                         "introspect.demo.bottleneck.operator_console"]
    app.refresh_display()
    await pilot.pause()
    await pilot.press("enter")
    await poll(pilot, lambda: app.screen.id == "queue-detail", "the queue page")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_queue_page(size: tuple[int, int], snap_compare: Any) -> None:
    assert snap_compare(replay_app("queues"), terminal_size=size, run_before=queue_page)
