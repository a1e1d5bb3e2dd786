"""Views ask through a `DataSource`: the live session and the replay controller both are one,
a recording answers what it holds and refuses control actions with one clear line, and views
reach the app by messages (a task page opened from the Tasks view of a replay)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from introspect.errors import UserError
from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from introspect.tui.state.live import LiveSession
from introspect.tui.state.replay import ReplayController
from introspect.tui.state.source import DataSource
from introspect.tui.views.task_detail import TaskDetailScreen
from tests.tui.support import RECORDING, poll, poll_text, run

# How views and the app call each request (the Protocol's call forms).
CALLS = {
    "tasks": ((object(),), {}),
    "task": ((1,), {}),
    "thread_stacks": ((), {}),
    "cancel": ((1,), {}),
    "gc_collect": ((), {}),
    "exact_accounting": ((5.0,), {}),
    "exact_report": ((), {}),
    "profile": ((3.0,), {"top": 15}),
    "close": ((), {}),
}


def _protocol_methods() -> set[str]:
    return {name for name, value in vars(DataSource).items()
            if inspect.iscoroutinefunction(value)}


def test_the_calls_checked_are_the_protocols() -> None:
    assert set(CALLS) == _protocol_methods()


@pytest.mark.parametrize("source", [LiveSession, ReplayController])
def test_live_and_replay_accept_every_call_a_view_makes(source: type) -> None:
    for name, (args, kwargs) in CALLS.items():
        method = getattr(source, name)
        assert inspect.iscoroutinefunction(method), (source, name)
        inspect.signature(method).bind(None, *args, **kwargs)  # raises if a view's call fails
    assert isinstance(source.live, bool)


def test_a_recording_answers_reads_and_refuses_control_actions() -> None:
    replay = ReplayController(read_recording(RECORDING), start=10**9, playing=False)
    assert isinstance(replay, DataSource) and replay.live is False
    row = replay.state.snapshot.tasks.top[0]

    async def ask() -> None:
        assert (await replay.task(row.id)).task.id == row.id
        assert await replay.thread_stacks() == []
        for call in (replay.cancel(row.id), replay.gc_collect(), replay.exact_accounting(5.0),
                     replay.exact_report(), replay.profile(3.0)):
            with pytest.raises(UserError, match="needs a live target: this is a recording"):
                await call

    asyncio.run(ask())


def test_enter_on_a_task_of_a_replay_opens_its_page_through_a_message() -> None:
    async def scenario() -> None:
        recording = read_recording(RECORDING)
        app = IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                            replay_playing=False, initial_view="tasks")
        async with app.run_test(size=(120, 30)) as pilot:
            view = app.query_one("#view-tasks")
            await poll(pilot, lambda: view.page is not None and view.page.tasks, "a page")
            first = view.page.tasks[0]
            await pilot.press("enter")
            await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "task page")
            await poll_text(pilot, f"task #{first.id}")
            await poll_text(pilot, "state")  # the body came from the recording

    run(scenario())
