"""Tasks view against a program that knows its tasks: agent-side filter, sort, paging, group by
kind, the task page with its await chain, and cancel (asked first, really cancelled)."""

from __future__ import annotations

from introspect.tui.app import IntrospectApp
from introspect.tui.messages import OpenTask
from introspect.tui.views.task_detail import TaskDetailScreen
from introspect.tui.views.tasks import TasksView
from introspect.tui.widgets.dialogs import ConfirmScreen
from introspect.tui.widgets.table import RowTable
from tests.support.procs import wait_until
from tests.tui.fixture_app import CHILDREN
from tests.tui.support import fixture_process, poll, poll_text, run, screen_text

BULK = 250


def test_filter_sort_page_and_group() -> None:
    with fixture_process(bulk=BULK) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            truth = client.tasks(text="bulk-", sort="name", descending=False, limit=1000)
        assert truth.matched == BULK
        names = [t.name for t in truth.tasks]

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="tasks")
            async with app.run_test(size=(120, 40)) as pilot:
                view = app.query_one(TasksView)
                await poll(pilot, lambda: view.page is not None, "the first page")
                await pilot.press("slash")
                await pilot.press(*"bulk-")
                await pilot.press("enter")
                await poll_text(pilot, f"1–100 of {BULK} matching")
                view.set_sort("name", descending=False)
                # The first page sorted by name and the age-sorted one both start with bulk-0:
                # wait for the whole page, not its first row.
                await poll(pilot, lambda: view.page and view.sort == "name"
                           and [t.name for t in view.page.tasks] == names[:100],
                           "sorted by name")
                await poll_text(pilot, names[0])
                await pilot.press("n")
                await poll_text(pilot, f"101–200 of {BULK} matching")
                assert [t.name for t in view.page.tasks] == names[100:200]
                await pilot.press("n")
                await poll_text(pilot, f"201–{BULK} of {BULK} matching")
                await pilot.press("r")  # reverse: descending names, back to the first page
                await poll(pilot, lambda: view.page.tasks[0].name == names[-1],
                           "reversed order")
                await pilot.press("g")
                text = await poll_text(pilot, "__main__.bulk")
                assert "LIVE" in text and "CREATED" in text
                line = next(ln for ln in text.splitlines() if "__main__.bulk" in ln)
                assert f" {BULK} " in line
                # Enter on a kind lists the tasks of that kind
                table = view.query_one("#task-table", RowTable)
                table.move_cursor(row=table.row_keys.index("__main__.bulk"))
                await pilot.press("enter")
                await poll(pilot, lambda: view.kind == "__main__.bulk" and view.page and
                           view.page.matched == BULK and not view.grouped, "kind filter")

        run(scenario())


def test_task_detail_and_cancel_with_confirmation() -> None:
    with fixture_process() as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            page = client.tasks(name="victim")
            spawner = client.tasks(name="spawner").tasks[0]
        assert page.matched == 1
        victim = page.tasks[0]

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="tasks")
            async with app.run_test(size=(120, 40)) as pilot:
                view = app.query_one(TasksView)
                await poll(pilot, lambda: view.page is not None, "the first page")
                await pilot.press("slash", *"victim", "enter")
                await poll(pilot, lambda: view.page and view.page.matched == 1 and
                           view.page.tasks[0].id == victim.id, "only the victim listed")
                await pilot.press("enter")
                await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen),
                           "the task page")
                text = await poll_text(pilot, "AWAIT CHAIN")
                assert f"#{victim.id}" in text and "victim" in text
                assert "asyncio.sleep" in text or "sleep" in text  # where it is stuck
                assert "fixture_app.py" in text  # creation site / stack
                # Cancel asks first; "no" leaves the task alone.
                await pilot.press("c")
                await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
                assert "Cancel task" in screen_text(app)
                await pilot.press("n")
                await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "back")
                with proc.client() as client:
                    assert client.tasks(name="victim").matched == 1
                assert not any("victim cancelled" in ln for ln in proc.stdout)
                await pilot.press("c")
                await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
                await pilot.press("y")
                await poll(pilot, lambda: any("victim cancelled" in ln for ln in proc.stdout),
                           "the target reports the cancellation")
                await pilot.press("escape")

                # The parent's page lists its children.
                app.post_message(OpenTask(spawner.id))
                text = await poll_text(pilot, "children")
                await poll(pilot, lambda: screen_text(app).count("#") >= CHILDREN + 1,
                           "children listed")

        run(scenario())
        with proc.client() as client:
            wait_until(lambda: client.tasks(name="victim").matched == 0,
                       message="victim gone from the agent's task list")
