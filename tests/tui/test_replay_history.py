"""Recorded agent history replays where it arrived: the state at any frame, however it is
reached (opened there, stepped forward, stepped or sought back), is the state live had then.

Ground truth: an `ObserverState` fed the same updates and history replies in the order live
received them. The recording is written with the real writer and read with the real reader;
420 updates cover both ways a replay rebuilds a frame (from the first update, and from a
chart window that starts later)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.protocol.snapshot import QueueRow, Snapshot
from introspect.recording import RecordingHeader, RecordingWriter, read_recording
from introspect.recording import reader as reader_module
from introspect.recording.format import MAX_HISTORY_SAMPLES
from introspect.recording.writer import Recorder
from introspect.tui.state.model import HISTORY, ObserverState, queue_key
from introspect.tui.state.replay import ReplayController
from tests.tui.support import RECORDING

T0 = 1_800_000_000.0
UPDATES = 420
Charts = tuple[list[Any], dict[str, list[int]]]


def charts(state: ObserverState) -> Charts:
    """What the charts draw: the samples, and the trend of each queue on screen (a queue no
    longer in the snapshot is not drawn, and its trend is not rebuilt from before the chart
    window)."""
    assert state.snapshot is not None
    shown = [queue_key(row) for row in state.snapshot.queues]
    return list(state.history), {k: list(state.queue_trends.get(k, ())) for k in shown}


def past(start: float, count: int, queue: str = "inbox") -> list[m.HistorySample]:
    """`count` one-second agent samples from `start`, each with a queue only the past had."""
    return [m.HistorySample(time=start + i, lag_p50=0.001 * i, lag_p99=0.002 * i,
                            lag_max=0.003 * i, ready=i % 5, tasks=10 + i % 3,
                            rss_bytes=1_000_000 + i, cpu_seconds=0.01 * i, threads=2,
                            gc_collections=i, gc_pause_seconds_total=0.0001 * i,
                            errors_total=i // 50, queue_lengths={queue: i % 9, "gone": i % 4})
            for i in range(count)]


# Where each history reply arrived: after update N (-1: before the first). Chosen so that
# live seeds at -1, 0 and 100 (the charts still had room) and the reply at 350 finds none.
ARRIVALS: dict[int, list[list[m.HistorySample]]] = {
    -1: [past(T0 - 3, 3)],
    0: [past(T0 - 20, 10)],
    100: [past(T0 - 650, 700), past(T0 - 900, 50, queue="older")],
    350: [past(T0 - 1000, 600)],
}


def snapshots() -> list[Snapshot]:
    base = read_recording(RECORDING).updates[0].snapshot
    assert base is not None
    queue = base.queues[0]
    out = []
    for i in range(UPDATES):
        rows = [msgspec.structs.replace(queue, name="inbox", length=(i * 7) % 11)]
        if i % 3 == 0:  # a queue that comes and goes
            rows.append(QueueRow(name="batch", type="asyncio.Queue", length=i % 5, capacity=0,
                                 getters=0, putters=0, created_at="app.py:1"))
        loop = msgspec.structs.replace(base.loop, ready=i % 13, lag_seconds=0.001 * (i % 17))
        out.append(msgspec.structs.replace(base, time=T0 + i, queues=rows, loop=loop))
    return out


def write(path: Path, snaps: list[Snapshot]) -> None:
    header = RecordingHeader(created=T0, target="test", interval=1.0, top_tasks=50)
    with RecordingWriter(path, header) as writer:
        for after in range(-1, len(snaps)):
            if after >= 0:
                snap = snaps[after]
                if after == 0:
                    update = m.Update(seq=0, time=snap.time, full=True, snapshot=snap)
                else:
                    changed = {name: msgspec.Raw(msgspec.msgpack.encode(getattr(snap, name)))
                               for name in ("time", "loop", "queues")}
                    update = m.Update(seq=after, time=snap.time, full=False, changed=changed)
                writer.write_update(update)
            for samples in ARRIVALS.get(after, []):
                writer.write_history(samples, arrived=snap.time if after >= 0 else T0)


def live_frames(snaps: list[Snapshot]) -> list[Charts]:
    """What live held at each frame: after update i and the history that followed it."""
    state, frames = ObserverState(), []
    for samples in ARRIVALS[-1]:
        state.seed_history(samples)
    for i, snap in enumerate(snaps):
        state.observe(snap, i, 0)
        for samples in ARRIVALS.get(i, []):
            state.seed_history(samples)
        frames.append(charts(state))
    return frames


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Charts]]:
    snaps = snapshots()
    path = tmp_path_factory.mktemp("history") / "history.rec"
    write(path, snaps)
    return read_recording(path), live_frames(snaps)


def test_the_scenario_seeds_where_live_had_room(recorded: tuple[Any, list[Charts]]) -> None:
    recording, frames = recorded
    assert recording.header.version == 2 and len(recording.history) == 5
    assert [len(s) for s in recording.history.after(100)] == [MAX_HISTORY_SAMPLES, 50]
    # Live: 13 samples before the stream's own, then 186 more when the reply at 100 came.
    assert sum(s.time < T0 for s in frames[0][0]) == 13
    assert sum(s.time < T0 for s in frames[100][0]) == HISTORY - 101
    assert frames[0][1]["inbox"][:3] == [0, 1, 2]  # the seeded past, then the stream's
    assert not any(s.time < T0 for s in frames[HISTORY - 1][0])  # pushed out by the stream


def test_stepping_forward_matches_live_at_every_frame(recorded: tuple[Any, list[Charts]]) -> None:
    recording, frames = recorded
    replay = ReplayController(recording, playing=False)
    assert charts(replay.state) == frames[0]
    for index in range(1, UPDATES):
        replay.step(1)
        assert charts(replay.state) == frames[index], f"frame {index}"


@pytest.mark.parametrize("index", [0, 1, 2, 99, 100, 101, 200, HISTORY - 2, HISTORY - 1,
                                   HISTORY, HISTORY + 1, 350, 351, UPDATES - 1])
def test_opening_at_a_frame_matches_live(recorded: tuple[Any, list[Charts]],
                                         index: int) -> None:
    recording, frames = recorded
    replay = ReplayController(recording, start=index, playing=False)
    assert charts(replay.state) == frames[index]
    if index < UPDATES - 1:  # and stepping on from a rebuilt frame
        replay.step(1)
        assert charts(replay.state) == frames[index + 1]


def test_stepping_and_seeking_back_match_live(recorded: tuple[Any, list[Charts]]) -> None:
    recording, frames = recorded
    replay = ReplayController(recording, start=HISTORY + 5, playing=False)
    for index in range(HISTORY + 4, HISTORY - 6, -1):  # across the window's edge
        replay.step(-1)
        assert charts(replay.state) == frames[index], f"frame {index}"
    replay.seek_seconds(-200)
    assert charts(replay.state) == frames[replay.index] and replay.index == 95
    replay.seek_seconds(-1000)
    assert replay.index == 0 and charts(replay.state) == frames[0]


def test_a_version_1_recording_still_replays() -> None:
    """A file written before history frames existed (format version 1), kept as it was."""
    recording = read_recording(RECORDING.with_name("session-v1.rec"))
    assert recording.header.version == 1 and len(recording.history) == 0
    replay = ReplayController(recording, start=len(recording.updates) - 1, playing=False)
    assert len(replay.state.history) == len(recording.updates)


def test_an_older_reader_refuses_a_version_2_file_in_one_line(
        recorded: tuple[Any, list[Charts]], monkeypatch: pytest.MonkeyPatch) -> None:
    recording, _ = recorded
    monkeypatch.setattr(reader_module, "FORMAT_VERSION", 1)
    with pytest.raises(UserError, match="is a version 2 recording; this introspect reads up "
                                        "to version 1"):
        read_recording(recording.path)


def one_update_writer(path: Path) -> RecordingWriter:
    """A recording with its header and one full update written: the frames a test adds come
    after it (use as a context manager)."""
    snap = snapshots()[0]
    header = RecordingHeader(created=T0, target="test", interval=1.0, top_tasks=50)
    writer = RecordingWriter(path, header)
    writer.write_update(m.Update(seq=0, time=snap.time, full=True, snapshot=snap))
    return writer


def test_a_history_frame_larger_than_an_agent_keeps_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.rec"
    with one_update_writer(path) as writer:
        writer._write_frame(msgspec.msgpack.encode(  # past the writer's own cap
            {"type": "history", "time": T0, "samples": [msgspec.to_builtins(s) for s in
                                                        past(T0 - 700, 700)]}))
    with pytest.raises(UserError, match="more history than an agent keeps"):
        read_recording(path)


def test_the_recorder_writes_history_where_it_arrived(tmp_path: Path) -> None:
    """`top --record` and `record` create the file at the first full update: a reply that
    came before it is written right after the header, so a replay seeds it before update 0."""
    updates = read_recording(RECORDING).updates
    recorder = Recorder(tmp_path / "r.rec", target="t", interval=1.0, top_tasks=50,
                        recorder="test")
    recorder.write_history(past(T0 - 10, 10))
    assert recorder.writer is None
    recorder.write(updates[0])
    recorder.write_history([])  # an agent without history: nothing written
    recorder.write_history(past(T0 - 30, 5))
    recorder.write(updates[1])
    recorder.close()
    recording = read_recording(tmp_path / "r.rec")
    assert len(recording.history) == 2
    assert [len(h) for h in recording.history.after(-1)] == [10]
    assert [h[0].time for h in recording.history.after(0)] == [T0 - 30]
    assert recording.history.after(1) == []


def test_history_frames_past_the_bound_are_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "many.rec"
    with one_update_writer(path) as writer:
        for i in range(reader_module.MAX_HISTORY_FRAMES + 10):
            writer.write_history(past(T0 - 1 - i, 1), arrived=T0)
    recording = read_recording(path)
    assert len(recording.history) == reader_module.MAX_HISTORY_FRAMES
    replay = ReplayController(recording, playing=False)  # seeds the first 299, room allowing
    assert len(replay.state.history) == HISTORY
