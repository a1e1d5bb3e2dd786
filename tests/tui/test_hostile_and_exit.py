"""Hostile task names render escaped and truncated with the layout intact; a target that exits
says so; the reconnect backoff grows and resets."""

from __future__ import annotations

from introspect.tui.app import IntrospectApp
from introspect.tui.state.connection import TargetExited, tui_backoff
from introspect.tui.views.task_detail import TaskDetailScreen
from introspect.tui.views.tasks import TasksView
from tests.tui.support import fixture_process, poll, poll_text, run, screen_text

WIDTH, HEIGHT = 100, 30


def _assert_layout(text: str) -> None:
    lines = text.splitlines()
    assert len(lines) == HEIGHT, "a name must not add lines"
    assert all(len(line) <= WIDTH for line in lines)
    assert "\x1b" not in text and "\x07" not in text
    assert "xxxxxxxxxx" * 10 not in text, "10 kB of name must be truncated"


def test_hostile_task_name_is_escaped_and_truncated() -> None:
    with fixture_process() as proc:
        proc.wait_for_line("ready")

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="tasks")
            async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
                view = app.query_one(TasksView)
                await pilot.press("slash", *"RED", "enter")
                await poll(pilot, lambda: view.page and view.page.matched == 1, "hostile row")
                text = await poll_text(pilot, "\\x1b[31mRED")
                _assert_layout(text)
                assert text.splitlines()[0].startswith(" vm") or "pid" in text.splitlines()[0]
                await pilot.press("enter")
                await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "page")
                text = await poll_text(pilot, "AWAIT CHAIN")
                _assert_layout(text)
                assert "\\x1b[31mRED" in text and "\\x0anl" in text, text
                assert "[bold]markup[/bold]" in text  # Rich markup shown, not interpreted
                await pilot.press("escape")
                await pilot.press("4")
                text = await poll_text(pilot, "\\x1b[31mRED")
                _assert_layout(text)

        run(scenario())


def test_target_exit_is_reported() -> None:
    with fixture_process(seconds=2) as proc:
        proc.wait_for_line("ready")

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.3)
            async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
                await poll_text(pilot, "● live")
                await poll(pilot, lambda: isinstance(app.connection, TargetExited), "exit")
                text = await poll_text(pilot, "target exited")
                assert "has exited" in text  # the banner
                assert f"pid {proc.pid}" in screen_text(app)  # the last data stays

        run(scenario())


def test_backoff_grows_to_a_cap_and_resets() -> None:
    backoff = tui_backoff()
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.5
