"""Screens of the main views, from the committed recording (deterministic: every value and age
comes from the recording's own clock). Update with `pytest --snapshot-update` after a reviewed
change of the screens."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from introspect.tui.views.tasks import TasksView
from introspect.tui.views.tree import TreeView
from tests.tui.support import RECORDING, poll


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
