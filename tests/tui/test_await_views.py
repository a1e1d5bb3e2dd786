"""The await graph in the TUI, against a live program that knows what awaits what
(tests/support/await_program.py): the task page lists whom a task awaits and who awaits it,
each line opening that task; the Tree view puts tasks under who awaits them and folds 500
identical sessions into one expandable row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import OptionList, Tree

from introspect.tui.app import IntrospectApp
from introspect.tui.messages import OpenTask
from introspect.tui.views.task_detail import TaskDetailScreen
from introspect.tui.views.tree import TreeView
from tests.support.await_program import await_process
from tests.support.procs import AgentProcess
from tests.tui.support import poll, poll_text, run, screen_text

SESSIONS = 500


@pytest.fixture(scope="module")
def program() -> Iterator[AgentProcess]:
    with await_process(pool=3, sessions=SESSIONS) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("ready")
        yield proc


def ids_by_name(proc: AgentProcess) -> dict[str, int]:
    with proc.client() as client:
        return {t.name: t.id for t in client.tasks(limit=1000).tasks}


def test_task_page_lists_awaits_and_awaited_by_and_opens_them(program: AgentProcess) -> None:
    ids = ids_by_name(program)

    async def scenario() -> None:
        app = IntrospectApp(target=str(program.pid), interval=0.5, initial_view="tasks")
        async with app.run_test(size=(120, 40)) as pilot:
            await poll(pilot, lambda: app.source is not None and app.source.live, "connected")
            app.post_message(OpenTask(ids["grouper"]))
            await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "task page")
            text = await poll_text(pilot, "awaited by")
            lines = [ln for ln in text.splitlines() if "via " in ln]
            assert any(f"awaits     #{ids['grouped-1']} grouped-1" in ln and
                       "via taskgroup" in ln for ln in lines), lines
            assert any(f"awaits     #{ids['grouped-2']} grouped-2" in ln for ln in lines)
            assert any(f"awaited by #{ids['main']} main" in ln and "via gather" in ln
                       for ln in lines), lines
            links = app.screen.query_one("#task-links", OptionList)
            assert links.has_focus and links.highlighted == 0
            await pilot.press("enter")  # the first line: grouped-1
            await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen) and
                       app.screen.task_id == ids["grouped-1"], "grouped-1's page")
            text = await poll_text(pilot, "awaited by")
            assert f"awaited by #{ids['grouper']} grouper" in text
            assert "awaits     #" not in text  # a leaf awaits no task
            await pilot.press("escape")
            await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen) and
                       app.screen.task_id == ids["grouper"], "back on grouper's page")
            await pilot.press("escape")
            await pilot.press("q")

    run(scenario())


def test_tree_places_tasks_under_who_awaits_them_and_folds_identical_ones(
        program: AgentProcess) -> None:
    async def scenario() -> None:
        app = IntrospectApp(target=str(program.pid), interval=0.5, initial_view="tree")
        async with app.run_test(size=(120, 40)) as pilot:
            view = app.query_one(TreeView)
            tree = view.query_one("#task-tree", Tree)
            text = await poll_text(pilot, "under who awaits them")
            # main's children: the sessions it created, folded, and what it awaits
            assert f"__main__.session ×{SESSIONS}  {SESSIONS} waiting" in text
            assert not any("session-1 " in ln for ln in text.splitlines())
            assert "fetcher __main__.fetcher  waiting  awaited via gather" in text
            assert "fetched __main__.leaf  waiting  awaited via task" in text
            assert "__main__.leaf ×2  2 waiting  awaited via taskgroup" in text
            assert "__main__.leaf ×3  3 waiting  awaited via gather" in text  # the pool
            group = next(node for node in _nodes(tree.root)
                         if isinstance(node.data, tuple) and node.data[1] == "__main__.session")
            assert not group.children  # filled in only on demand
            group.expand()
            await poll(pilot, lambda: len(group.children) == SESSIONS, "the sessions listed")
            tree.move_cursor(group.children[0])
            assert "session-0 __main__.session  waiting" in screen_text(app)
            await pilot.press("q")

    run(scenario())


def _nodes(node):
    for child in node.children:
        yield child
        yield from _nodes(child)
