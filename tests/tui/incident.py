"""A deterministic incident for the screens of issue 16: the committed session plus one last
update holding what an on-call engineer meets at 3 a.m. — a 1.21 s `time.sleep` on the loop
by the reporter, a lint, a kind gone after 16 identical crashes, the task that held the loop
58 s. Written as a real recording (the replay path reads it like any other)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from introspect.protocol import messages as m
from introspect.protocol.snapshot import (
    BlockingEvent,
    ErrorReport,
    Frame,
    KindCount,
    LintEvent,
    Snapshot,
    TaskRef,
    TaskRow,
)
from introspect.recording import read_recording
from introspect.recording.writer import RecordingWriter
from tests.tui.support import RECORDING

REPORTER = TaskRef(id=529, name="Task-529", kind="war_room.reporter")
HEADLINE = ("loop blocked 1.21s by reporter (Task-529) in sync_db_query war_room.py:88 "
            "→ time.sleep")
CRASHES = 16


def incident_snapshot(base: Snapshot) -> Snapshot:
    now = base.time
    stack = [Frame(function="run_forever", file="/usr/lib/python3.11/asyncio/base_events.py",
                   line=607),
             Frame(function="_run", file="/usr/lib/python3.11/asyncio/events.py", line=80),
             Frame(function="reporter", file="/srv/app/war_room.py", line=95),
             Frame(function="sync_db_query", file="/srv/app/war_room.py", line=88),
             Frame(function="time.sleep", file="<call>", line=0)]
    blocking = BlockingEvent(
        time=now - 2.0, duration=1.21, ongoing=False, task=REPORTER, callback=None,
        stack=stack, location="/srv/app/war_room.py:88 sync_db_query", culprit="time.sleep",
        single_step=True, threshold=0.1, exact=True, loop_thread_cpu_share=0.0)
    lint = LintEvent(time=now - 1.0, lint="task_never_yields", subject="war_room.reporter",
                     message="reporter (Task-529) ran 1.2s without yielding to the loop",
                     duration=1.21, location="/srv/app/war_room.py:88 sync_db_query",
                     task=REPORTER)
    crash = [ErrorReport(time=now - 40.0 + i, source="task", type="TypeError",
                         message="unsupported operand type(s) for +: 'int' and 'NoneType'",
                         where="/srv/app/war_room.py:131 signal_gateway",
                         task=f"gateway-{i}", kind="war_room.signal_gateway", retrieved=True,
                         traceback="Traceback (most recent call last):\n  File "
                         "\"/srv/app/war_room.py\", line 131, in signal_gateway\n"
                         "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'")
             for i in range(CRASHES)]
    tasks = base.tasks
    reporter_row = TaskRow(id=529, name="Task-529", kind="war_room.reporter", state="running",
                           age_seconds=240.0, location="/srv/app/war_room.py:95 reporter",
                           awaiting="", busy_seconds=0.4, held_seconds=58.0)
    gone = KindCount(kind="war_room.signal_gateway", count=0, created=CRASHES,
                     finished_error=CRASHES)
    tasks = msgspec.structs.replace(tasks, top=[*tasks.top, reporter_row],
                                    by_kind=[*tasks.by_kind, gone], total=tasks.total + 1)
    errors = msgspec.structs.replace(base.errors, recent=[*base.errors.recent, *crash],
                                     total=base.errors.total + CRASHES)
    return msgspec.structs.replace(base, events=[*base.events, blocking, lint], errors=errors,
                                   tasks=tasks)


def write_incident_recording(path: Path) -> Path:
    """The committed session's updates, then one full update holding the incident."""
    session = read_recording(RECORDING)
    base = msgspec.convert(session.sections[len(session.updates) - 1], Snapshot)
    with RecordingWriter(path, session.header) as writer:
        for i in range(len(session.updates)):
            snap = msgspec.convert(session.sections[i], Snapshot)
            writer.write_update(m.Update(seq=i + 1, time=snap.time, full=True, snapshot=snap))
        last = incident_snapshot(base)
        last = msgspec.structs.replace(last, time=base.time + 1.0)
        writer.write_update(m.Update(seq=len(session.updates) + 1, time=last.time, full=True,
                                     snapshot=last))
    return path
