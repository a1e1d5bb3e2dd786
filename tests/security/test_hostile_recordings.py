"""Recordings are files people pass around: a crafted one must not crash the TUI with a
traceback (and exit 0), blow the stack, or make `introspect top --replay` take hundreds of MB.
Each file here is crafted to the format (docs/recording-format.md); memory is the reader
process's peak RSS from /proc."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.recording import RecordingHeader, read_recording
from tests.tui.support import RECORDING

PEAK_RSS_BOUND = 150 * 1024 * 1024


def _header() -> bytes:
    return msgspec.msgpack.encode(RecordingHeader(created=1.0, target="crafted", interval=1.0,
                                                  top_tasks=20))


def _full_update() -> bytes:
    return m.encode(read_recording(RECORDING).updates[0])


def _changed(seq: int, sections: bytes) -> bytes:
    """An update frame written by hand: `sections` is the MessagePack of the changed map."""
    fields = [(b"type", b"\xa6update"), (b"seq", bytes([seq & 0x7F])),
              (b"time", b"\xcb" + struct.pack(">d", 1000.0 + seq)), (b"full", b"\xc2"),
              (b"changed", sections)]
    body = b"".join(bytes([0xA0 | len(k)]) + k + v for k, v in fields)
    return bytes([0x80 | len(fields)]) + body


def _write(path: Path, frames: list[bytes], level: int = 6) -> Path:
    path.write_bytes(gzip.compress(b"".join(framing.pack(f) for f in frames), level))
    return path


def replay(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "introspect", "top", "--replay", str(path)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def assert_one_line_refusal(out: subprocess.CompletedProcess, needle: str) -> None:
    assert out.returncode not in (0, None), out
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("introspect: error:"), out.stderr[-3000:]
    assert needle in lines[0], lines[0]


def test_a_section_of_the_wrong_type_is_refused_in_one_line(tmp_path):
    wrong = msgspec.msgpack.encode({"loop": "not a map", "tasks": {"total": "many"}})
    path = _write(tmp_path / "wrong.rec", [_header(), _full_update(), _changed(2, wrong)])
    assert_one_line_refusal(replay(path), "wrong type")


def test_deep_nesting_is_refused_in_one_line(tmp_path):
    depth = 200_000
    nested = b"\x81\xa5tasks" + b"\x91" * depth + b"\xc0"  # {"tasks": [[[...nil...]]]}
    path = _write(tmp_path / "deep.rec", [_header(), _full_update(), _changed(2, nested)])
    assert_one_line_refusal(replay(path), "nested too deeply")


def test_a_giant_frame_length_is_refused_in_one_line(tmp_path):
    path = tmp_path / "giant.rec"
    path.write_bytes(gzip.compress(framing.pack(_header()) + struct.pack(">I", 1 << 30)
                                   + b"\0" * 1000))
    assert_one_line_refusal(replay(path), "frame of")


def _peak_rss_reading(path: Path) -> tuple[int, int]:
    """(updates, VmHWM bytes) of a fresh process that opens the recording and seeks in it."""
    code = f"""
from introspect.recording import read_recording
rec = read_recording({str(path)!r})
rec.sections[-1]; rec.sections[0]; rec.sections[len(rec.sections) // 2]
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(len(rec.updates), int(hwm.split()[1]) * 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    count, peak = out.stdout.split()
    return int(count), int(peak)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """~300 KB on disk, ~135 MB decompressed: valid, highly repetitive updates."""
    rows = msgspec.msgpack.encode({"tasks": {"total": 1, "top": [],
                                             "by_kind": [{"kind": "k", "count": 1}] * 24_000}})
    frames = [_header(), _full_update()] + [_changed(i, rows) for i in range(2, 400)]
    path = _write(tmp_path_factory.mktemp("bomb") / "bomb.rec", frames, level=9)
    assert path.stat().st_size < 1_000_000
    return path


def test_a_small_file_that_decompresses_huge_opens_in_bounded_memory(bomb):
    count, peak = _peak_rss_reading(bomb)
    assert count == 399
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak >> 20} MiB opening a {bomb.stat().st_size}" \
        " byte recording"
