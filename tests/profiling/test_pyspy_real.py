"""py-spy against real processes: dumps, recordings, and its failures as one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from introspect.errors import UserError
from introspect.profiling import pyspy
from introspect.profiling.report import load_speedscope
from tests.profiling.support import PYSPY, Child, unused_pid


def _thread(result: pyspy.DumpResult, name: str) -> pyspy.ThreadStack:
    matches = [t for t in result.threads if t.name == name]
    assert matches, f"no thread {name!r} in {[t.name for t in result.threads]}"
    return matches[0]


def test_find_pyspy_prefers_the_one_beside_python() -> None:
    assert pyspy.find_pyspy() == str(PYSPY)


def test_dump_finds_each_function_on_its_thread(cpu_child: Child) -> None:
    result = pyspy.dump(cpu_child.pid)
    assert result.pid == cpu_child.pid
    assert result.command and "python" in result.command
    main = _thread(result, "MainThread")
    sleeper = _thread(result, "sleeper")
    assert main.frames[0].name == "cpu_heavy_fn"  # innermost first
    assert main.frames[-1].name == "<module>"
    assert main.os_thread_id == cpu_child.pid
    assert sleeper.frames[0].name == "sleeping_fn"
    assert sleeper.frames[0].filename == "<string>"
    assert isinstance(sleeper.frames[0].line, int)
    assert not sleeper.active and not sleeper.owns_gil
    assert all(f.name != "sleeping_fn" for f in main.frames)
    assert all(f.name != "cpu_heavy_fn" for f in sleeper.frames)


def test_dump_native(cpu_child: Child) -> None:
    result = pyspy.dump(cpu_child.pid, native=True)
    names = [f.name for t in result.threads for f in t.frames]
    assert "sleeping_fn" in names and "cpu_heavy_fn" in names
    assert any(f.module for t in result.threads for f in t.frames)  # native frames: a .so


def test_dump_nonblocking(cpu_child: Child) -> None:
    result = pyspy.dump(cpu_child.pid, nonblocking=True)
    assert "sleeping_fn" in [f.name for t in result.threads for f in t.frames]


def test_native_with_nonblocking_is_refused_up_front(cpu_child: Child) -> None:
    with pytest.raises(UserError, match="drop --native or --nonblocking"):
        pyspy.dump(cpu_child.pid, native=True, nonblocking=True)


def test_dump_text_looks_like_pyspy_dump(cpu_child: Child) -> None:
    text = pyspy.dump_text(pyspy.dump(cpu_child.pid))
    lines = text.splitlines()
    assert lines[0].startswith(f"Process {cpu_child.pid}: ")
    main = lines.index(next(ln for ln in lines if ln.endswith('"MainThread"')))
    assert lines[main].startswith(f"Thread {cpu_child.pid} (active")
    assert lines[main + 1].startswith("    <string>:") and lines[main + 1].endswith(" cpu_heavy_fn")
    assert any(ln.endswith(" sleeping_fn") for ln in lines)


def test_record_speedscope_is_valid_and_hot_in_cpu_heavy_fn(cpu_child: Child,
                                                            tmp_path: Path) -> None:
    calls: list[tuple[float, float]] = []
    out = pyspy.record(cpu_child.pid, 3, "speedscope", tmp_path / "p.speedscope.json",
                       progress=lambda e, d: calls.append((e, d)))
    data = json.loads(out.read_text())
    assert data["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert data["profiles"] and all(p["type"] == "sampled" for p in data["profiles"])
    frames = data["shared"]["frames"]
    assert {"name", "file", "line"} <= set(frames[0])
    samples = [s for p in data["profiles"] for s in p["samples"]]
    assert len(samples) > 100  # 3 s at 100 Hz, with slack for a loaded machine
    leaves = [frames[s[-1]]["name"] for s in samples if s]
    # py-spy's idle detection is a heuristic: under load some samples of the sleeping thread
    # count as active (seen: 26% at load 10), so ask for the most frequent leaf, not a share.
    assert max(set(leaves), key=leaves.count) == "cpu_heavy_fn"
    # progress: fed while running, monotonic, ends at the duration
    assert len(calls) >= 10
    assert [e for e, _ in calls] == sorted(e for e, _ in calls)
    assert calls[-1] == pytest.approx((3.0, 3.0), abs=0.01)
    report = load_speedscope(out)
    assert report.functions[0].name == "cpu_heavy_fn"


def test_record_flamegraph_and_raw(cpu_child: Child, tmp_path: Path) -> None:
    svg = pyspy.record(cpu_child.pid, 1, "flamegraph", tmp_path / "p.svg", nonblocking=True)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "cpu_heavy_fn" in text
    raw = pyspy.record(cpu_child.pid, 1, "raw", tmp_path / "p.txt", rate=50)
    assert "cpu_heavy_fn" in raw.read_text()


def test_record_rejects_bad_arguments_before_sampling(cpu_child: Child, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        pyspy.record(cpu_child.pid, 1, "speedscope", tmp_path / "missing" / "p.json")
    with pytest.raises(UserError, match="rate"):
        pyspy.record(cpu_child.pid, 1, "speedscope", tmp_path / "p.json", rate=0)
    with pytest.raises(UserError, match="duration"):
        pyspy.record(cpu_child.pid, 0, "speedscope", tmp_path / "p.json")
    with pytest.raises(UserError, match="format"):
        pyspy.record(cpu_child.pid, 1, "pdf", tmp_path / "p.json")  # type: ignore[arg-type]


def test_unknown_pid() -> None:
    pid = unused_pid()
    with pytest.raises(UserError, match=f"^no process with PID {pid}$"):
        pyspy.dump(pid)


def test_not_a_python_process(sleep_process: Child, tmp_path: Path) -> None:
    for call in (lambda: pyspy.dump(sleep_process.pid),
                 lambda: pyspy.record(sleep_process.pid, 1, "flamegraph", tmp_path / "x.svg")):
        with pytest.raises(UserError) as info:
            call()
        msg = str(info.value)
        assert msg == (f"PID {sleep_process.pid} does not look like a Python process "
                       "(py-spy found no Python interpreter in it)")


def _as_nobody_wrapper(tmp_path: Path) -> str:
    """A py-spy that runs as the unprivileged user `nobody` (against our root-owned child)."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test ptrace permission errors"
    wrapper = tmp_path / "py-spy-as-nobody"
    wrapper.write_text(f"#!/bin/sh\nexec {setpriv} --reuid=nobody --regid=nogroup "
                       f"--clear-groups {PYSPY} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def test_permission_denied_for_real(cpu_child: Child, tmp_path: Path) -> None:
    assert os.geteuid() == 0, "CI runs as root; this test drops to `nobody`"
    wrapper = _as_nobody_wrapper(tmp_path)
    with pytest.raises(UserError) as info:
        pyspy.dump(cpu_child.pid, executable=wrapper)
    msg = str(info.value)
    assert msg.startswith(f"permission denied attaching to PID {cpu_child.pid}")
    assert "SYS_PTRACE" in msg and "\n" not in msg
    outdir = tmp_path / "out"
    outdir.mkdir()
    with pytest.raises(UserError, match=r"^permission denied attaching"):
        pyspy.record(cpu_child.pid, 1, "speedscope", outdir / "p.json", executable=wrapper)


def test_timeout_is_a_user_error(cpu_child: Child, tmp_path: Path) -> None:
    hang = tmp_path / "hanging-py-spy"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    with pytest.raises(UserError, match=r"py-spy did not answer within 0\.5 s"):
        pyspy.dump(cpu_child.pid, timeout=0.5, executable=str(hang))


def test_missing_pyspy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                       cpu_child: Child) -> None:
    monkeypatch.setattr(pyspy.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"pip install 'introspect\[profile\]'"):
        pyspy.find_pyspy()
    with pytest.raises(UserError, match="py-spy is not installed"):
        pyspy.dump(cpu_child.pid)
    with pytest.raises(UserError, match="cannot run py-spy"):
        pyspy.dump(cpu_child.pid, executable=str(tmp_path / "nope"))


def test_dump_text_escapes_hostile_names(hostile_child: Child) -> None:
    result = pyspy.dump(hostile_child.pid)
    assert any(f.name.startswith("evil_\x1b[2J") for t in result.threads for f in t.frames)
    text = pyspy.dump_text(result)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert '"sleep\\x1b[5mer"' in text
    assert "/tmp/evil\\x1b]0;pwned\\x07.py:" in text and "evil_\\x1b[2J\\x1b[31mred\\u202e" in text
