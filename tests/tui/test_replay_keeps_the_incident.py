"""A recording keeps the incident: a service with 1000 idle tasks (the oldest) and one task
that blocks the loop now and then, recorded with `introspect record`, replayed: the blocking
task is in the recording's task rows and findable in the Tasks view of the replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from introspect.tui.views.tasks import TasksView
from tests.support.procs import AgentProcess
from tests.tui.support import poll, run, screen_text

SERVICE = """
    import asyncio, time

    async def session():
        await asyncio.Event().wait()

    async def crunch_report():
        while True:
            time.sleep(0.15)  # blocks the loop: the incident
            await asyncio.sleep(0.5)

    async def main():
        sessions = [asyncio.create_task(session(), name=f"session-{i}") for i in range(1000)]
        asyncio.create_task(crunch_report(), name="reporter")
        print("ready", flush=True)
        await asyncio.gather(*sessions)
    asyncio.run(main())
"""


def test_replay_finds_the_blocking_task_among_1000_idle_ones(tmp_path: Path) -> None:
    with AgentProcess.script(SERVICE) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        out = tmp_path / "incident.rec"
        result = subprocess.run(
            [sys.executable, "-m", "introspect", "record", str(proc.pid), "-o", str(out),
             "--interval", "0.5", "--duration", "3"], capture_output=True, text=True,
            timeout=60)
        assert result.returncode == 0, result.stderr
    recording = read_recording(out)
    last = recording.sections[-1]["tasks"]["top"]
    assert len(last) == 100  # the default --top: the budget is kept
    reporter = [t for t in last if t["name"] == "reporter"]
    assert reporter and reporter[0]["held_seconds"] > 0.1, reporter
    assert {t["kind"] for t in last} >= {"__main__.session", "__main__.crunch_report",
                                         "__main__.main"}

    async def replay() -> None:
        app = IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                            replay_playing=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")
            view = app.query_one(TasksView)
            await poll(pilot, lambda: view.page is not None, "the replay's task page")
            await pilot.press("slash")
            await pilot.press(*"reporter")
            await pilot.press("enter")
            await poll(pilot, lambda: view.page is not None and view.page.matched == 1
                       and "crunch_report" in screen_text(app), "the reporter row")

    run(replay())
