"""The recording format: round trip, a killed recorder's file, bad files, and `introspect record`
against a real agent (bounded by duration and by size)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.recording import (
    FORMAT_VERSION,
    RecordingHeader,
    RecordingWriter,
    read_recording,
)
from introspect.tui.state.replay import ReplayController
from tests.attach.support import CONTROL_TOKEN, start_host, tcp_target
from tests.support.procs import wait_until
from tests.tui.fixture_app import QUEUE_BACKLOG
from tests.tui.support import RECORDING, fixture_process


def test_committed_fixture_is_a_valid_small_recording() -> None:
    rec = read_recording(RECORDING)
    assert RECORDING.stat().st_size < 200_000
    assert rec.header.version in (1, FORMAT_VERSION) and rec.header.node is not None
    assert rec.updates[0].full and not any(u.full for u in rec.updates[1:])
    assert rec.end is not None and rec.end.updates == len(rec.updates)
    assert [t["name"] for t in rec.sections[-1]["tasks"]["top"]].count("victim") == 1


def _copy_with_updates(src: Path, dst: Path, updates: list[m.Update]) -> RecordingWriter:
    header = RecordingHeader(created=1.0, target="test", interval=0.5, top_tasks=50)
    writer = RecordingWriter(dst, header)
    for u in updates:
        writer.write_update(u)
    return writer


def test_round_trip_and_killed_recorder(tmp_path: Path) -> None:
    rec = read_recording(RECORDING)
    path = tmp_path / "copy.rec"
    writer = _copy_with_updates(RECORDING, path, rec.updates)
    # Not closed, like a recorder killed with SIGKILL: every flushed frame is readable.
    partial = read_recording(path)
    assert partial.truncated and partial.end is None
    assert len(partial.updates) == len(rec.updates)
    assert partial.sections[-1] == rec.sections[-1]
    writer.close("duration")
    full = read_recording(path)
    assert not full.truncated and full.end is not None and full.end.reason == "duration"
    # Cut in the middle of the compressed stream: the complete frames before the cut survive.
    data = path.read_bytes()
    (tmp_path / "cut.rec").write_bytes(data[: len(data) * 2 // 3])
    cut = read_recording(tmp_path / "cut.rec")
    assert cut.truncated and 1 <= len(cut.updates) < len(rec.updates)


@pytest.mark.parametrize("content", [b"", b"not gzip at all", b"\x1f\x8b garbage"])
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.rec"
    path.write_bytes(content)
    with pytest.raises(UserError):
        read_recording(path)


def test_replay_of_a_bad_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.rec"
    path.write_bytes(b"nope")
    result = subprocess.run([sys.executable, "-m", "introspect", "top", "--replay", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.startswith("introspect: error:") and "Traceback" not in result.stderr


def test_record_command_against_a_live_agent(tmp_path: Path) -> None:
    with fixture_process() as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:  # a past from before the recording
            wait_until(lambda: len(client.history()) >= 2, timeout=30, interval=0.2,
                       message="2 s of agent history")
        out = tmp_path / "live.rec"
        result = subprocess.run(
            [sys.executable, "-m", "introspect", "record", str(proc.pid), "-o", str(out),
             "--interval", "0.2", "--duration", "2"], capture_output=True, text=True,
            timeout=30)
        assert result.returncode == 0, result.stderr
        assert "recording" in result.stderr and "updates" in result.stderr
        rec = read_recording(out)
        assert rec.end is not None and rec.end.reason == "duration"
        assert rec.header.node is not None and rec.header.node.pid == proc.pid
        assert len(rec.updates) >= 3
        last = rec.sections[-1]
        assert max(q["length"] for q in last["queues"]) == QUEUE_BACKLOG
        assert "victim" in [t["name"] for t in last["tasks"]["top"]]
        # The agent's history, kept where it arrived, reaches back before the first update.
        assert rec.header.version == 2 and len(rec.history) == 1
        kept = [s for after in range(-1, len(rec.updates)) for h in rec.history.after(after)
                for s in h]
        assert sum(s.time < rec.updates.times[0] for s in kept) >= 2
        replay = ReplayController(rec, start=len(rec.updates) - 1, playing=False)
        assert len(replay.state.history) > len(rec.updates)

        small = tmp_path / "small.rec"
        result = subprocess.run(
            [sys.executable, "-m", "introspect", "record", str(proc.pid), "-o", str(small),
             "--interval", "0.1", "--max-bytes", "3k"], capture_output=True, text=True,
            timeout=30)
        assert result.returncode == 0, result.stderr
        rec = read_recording(small)
        assert rec.end is not None and rec.end.reason == "max-bytes"
        # The bound is checked after each frame: at most one frame (+ the end frame) over.
        assert small.stat().st_size < 3 * 1024 + 2048


def test_record_stops_cleanly_when_the_target_exits(tmp_path: Path) -> None:
    with fixture_process(seconds=1.5) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        out = tmp_path / "exit.rec"
        result = subprocess.run(
            [sys.executable, "-m", "introspect", "record", str(proc.pid), "-o", str(out),
             "--interval", "0.2"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "went away" in result.stderr
        rec = read_recording(out)
        assert rec.end is not None and rec.end.reason == "target-exited"


def test_record_refused_or_on_a_dead_socket_exits_with_one_line(tmp_path: Path) -> None:
    token_file, wrong = tmp_path / "control.token", tmp_path / "wrong.token"
    token_file.write_text(CONTROL_TOKEN + "\n")
    wrong.write_text("not-the-token\n")
    out = tmp_path / "refused.rec"
    with start_host(["--listen", "tcp://127.0.0.1:0", "--token-file", str(token_file)]) as proc:
        result = subprocess.run(
            [sys.executable, "-m", "introspect", "record", tcp_target(proc), "-o", str(out),
             "--token-file", str(wrong), "--duration", "30"],
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, result.stderr
    assert result.stderr.count("\n") == 1 and "wrong token" in result.stderr
    assert not out.exists()

    dead = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(dead))
    sock.close()
    result = subprocess.run(
        [sys.executable, "-m", "introspect", "record", f"unix:{dead}", "-o", str(out)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "connection refused" in result.stderr
