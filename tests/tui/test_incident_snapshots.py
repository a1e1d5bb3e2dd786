"""Screens of an incident (tests/tui/incident.py) at 80×24 and 160×48: the grouped Errors with
the events as one-line cards, a blocking event's full card, the trouble-first Tasks view.
Deterministic: ages come from the recording's clock and the card's clock time is read in UTC.
Update with `pytest --snapshot-update` after a reviewed change of the screens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from tests.tui.incident import write_incident_recording
from tests.tui.test_snapshots import settle

SIZES = [(80, 24), (160, 48)]
pytestmark = pytest.mark.usefixtures("utc")


def incident_app(tmp_path: Path, view: str) -> IntrospectApp:
    recording = read_recording(write_incident_recording(tmp_path / "incident.rec"))
    return IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                         replay_playing=False, initial_view=view)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_grouped_errors_and_event_lines(size: tuple[int, int], tmp_path: Path,
                                        snap_compare: Any) -> None:
    assert snap_compare(incident_app(tmp_path, "errors"), terminal_size=size,
                        run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_blocking_event_card(size: tuple[int, int], tmp_path: Path,
                             snap_compare: Any) -> None:
    # Tab into the events, down to the blocking one (the lint after it is newer), Enter.
    assert snap_compare(incident_app(tmp_path, "errors"), terminal_size=size,
                        press=["tab", "down", "enter"], run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trouble_first_tasks(size: tuple[int, int], tmp_path: Path,
                             snap_compare: Any) -> None:
    assert snap_compare(incident_app(tmp_path, "tasks"), terminal_size=size,
                        run_before=settle)
