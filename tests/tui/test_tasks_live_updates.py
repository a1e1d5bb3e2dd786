"""The tasks table is updated in place on every update, not rebuilt: against a target whose
tasks the test starts and cancels, the table follows the agent (new rows, removed rows, the
sort); a hidden tasks view asks the agent for nothing until it is shown; updates do not
cancel and re-ask a page that is on its way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from introspect.protocol import messages as m
from introspect.protocol.snapshot import TaskRow
from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from introspect.tui.views import tasks as tasks_view
from introspect.tui.views.tasks import TasksView
from introspect.tui.widgets.table import RowTable
from tests.support.procs import AgentProcess
from tests.tui.support import RECORDING, poll, run, screen_text

# Jobs started and cancelled on command (one line on stdin: "spawn NAME" / "cancel NAME").
TARGET = """
    import asyncio, sys, threading

    async def job():
        await asyncio.sleep(3600)

    async def main():
        loop = asyncio.get_running_loop()
        jobs = {}

        def command(line):
            verb, name = line.split()
            if verb == "spawn":
                jobs[name] = asyncio.create_task(job(), name=name)
            else:
                jobs.pop(name).cancel()
            print(f"did {verb} {name}", flush=True)

        def read():
            for line in sys.stdin:
                loop.call_soon_threadsafe(command, line)

        threading.Thread(target=read, daemon=True).start()
        for name in ("job-b", "job-d", "job-f", "job-h"):
            command(f"spawn {name}")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def send(proc: AgentProcess, *commands: str) -> None:
    for command in commands:
        assert proc.proc.stdin is not None
        proc.proc.stdin.write(command + "\n")
        proc.proc.stdin.flush()
        proc.wait_for_line(f"did {command}")


def truth(proc: AgentProcess, view: TasksView) -> m.TaskPage:
    with proc.client() as client:
        return client.request(view.request(), m.TaskPage)


def shows(app: IntrospectApp, proc: AgentProcess, view: TasksView) -> Any:
    """The table holds the agent's answer to the view's query, row for row, and the screen
    lists the names in that order."""
    page = truth(proc, view)
    table = app.query_one("#task-table", RowTable)
    if table.row_keys != [str(t.id) for t in page.tasks]:
        return False
    text = screen_text(app)
    positions = [text.find(f" {t.name} ") for t in page.tasks]
    return page if all(p >= 0 for p in positions) and positions == sorted(positions) else False


def test_table_follows_new_and_removed_tasks_in_sort_order() -> None:
    with AgentProcess.script(TARGET) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.3, initial_view="tasks")
            async with app.run_test(size=(120, 30)) as pilot:
                view = app.query_one(TasksView)
                table = app.query_one("#task-table", RowTable)
                await poll(pilot, lambda: view.page is not None, "the first page")
                await pilot.press("slash", *"job-", "enter")
                view.set_sort("name", descending=False)
                page = await poll(pilot, lambda: shows(app, proc, view), "the jobs by name")
                assert [t.name for t in page.tasks] == ["job-b", "job-d", "job-f", "job-h"]
                table.move_cursor(row=1)

                send(proc, "cancel job-d", "spawn job-a", "spawn job-e", "cancel job-h")
                page = await poll(pilot, lambda: shows(app, proc, view),
                                  "the new jobs in, the cancelled ones out")
                assert [t.name for t in page.tasks] == ["job-a", "job-b", "job-e", "job-f"]
                assert "job-d" not in screen_text(app) and "job-h" not in screen_text(app)
                assert app.query_one("#task-table", RowTable) is table  # updated in place
                assert table.cursor_row == 1  # the cursor keeps its place

                await pilot.press("r")  # descending names, same rows
                page = await poll(pilot, lambda: view.descending and
                                  shows(app, proc, view), "reversed")
                assert [t.name for t in page.tasks] == ["job-f", "job-e", "job-b", "job-a"]
                send(proc, "spawn job-z")
                page = await poll(pilot, lambda: shows(app, proc, view), "job-z on top")
                assert page.tasks[0].name == "job-z"

        run(scenario())


def test_hidden_tasks_view_is_filled_when_shown() -> None:
    with AgentProcess.script(TARGET) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.2, initial_view="system")
            async with app.run_test(size=(120, 30)) as pilot:
                view = app.query_one(TasksView)
                await poll(pilot, lambda: app.model.updates >= 3, "three updates")
                assert view.page is None  # hidden: nothing asked, nothing drawn
                send(proc, "spawn job-new")
                await pilot.press("3")
                await poll(pilot, lambda: shows(app, proc, view), "a page from the agent")
                assert "job-new" in screen_text(app)

        run(scenario())


class SlowSource:
    """A live source whose task pages wait until the test lets them go."""

    live = True

    def __init__(self) -> None:
        self.asked: list[m.TaskListRequest] = []
        self.release = asyncio.Event()

    async def tasks(self, req: m.TaskListRequest) -> m.TaskPage:
        self.asked.append(req)
        req.id = len(self.asked)  # as the client does to what it sends
        await self.release.wait()
        row = TaskRow(id=1, name="slow-one", kind="k", state="waiting", age_seconds=1.0,
                      location="app.py:1 f", awaiting="sleep")
        return m.TaskPage(total=1, matched=1, offset=0, tasks=[row])


def test_updates_do_not_cancel_a_page_on_its_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filtered page of 100k tasks takes the agent about one update interval: if every
    update cancelled and re-asked it, it would never arrive."""
    async def scenario() -> None:
        recording = read_recording(RECORDING)
        app = IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                            replay_playing=False, initial_view="system")
        async with app.run_test(size=(120, 30)) as pilot:
            source = SlowSource()
            app.source = source
            view = app.query_one(TasksView)
            await pilot.press("3")
            await poll(pilot, lambda: len(source.asked) == 1, "the page asked for")
            for _ in range(3):  # updates while the page is on its way
                view.show(app.model)
                await pilot.pause()
            assert len(source.asked) == 1
            monkeypatch.setattr(tasks_view, "FRESH", 3600.0)
            source.release.set()
            await poll(pilot, lambda: "slow-one" in screen_text(app), "the page on screen")
            view.show(app.model)  # an update while the page is fresh
            await pilot.pause()
            assert len(source.asked) == 1
            monkeypatch.setattr(tasks_view, "FRESH", 0.0)
            view.show(app.model)  # an update later: asked again
            await poll(pilot, lambda: len(source.asked) == 2, "a new page asked for")
            view.set_sort("name")  # another query: asked at once
            await poll(pilot, lambda: len(source.asked) == 3, "the new query asked for")

    run(scenario())
