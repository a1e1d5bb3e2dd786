"""`introspect profile` end to end, as a user runs it, against real processes."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from introspect.cli.profile_cmd import ProgressBar, choose_format, default_output
from tests.profiling.support import Child, unused_pid

REPO = Path(__file__).resolve().parents[2]


def introspect(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "introspect", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd or REPO, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("introspect: error: ")
    return lines[0]


def test_top_is_the_default_and_puts_cpu_heavy_fn_first(cpu_child: Child) -> None:
    proc = introspect("profile", str(cpu_child.pid), "--duration", "2", "--format", "top")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["OWN", "TOTAL", "FUNCTION", "LOCATION"]
    first = lines[1].split()
    assert first[2] == "cpu_heavy_fn" and first[3].startswith("<string>:")
    assert float(first[0].rstrip("%")) >= float(lines[2].split()[0].rstrip("%"))
    # stderr is not a terminal here: one summary line, no progress bar
    assert proc.stderr.count("\n") == 1 and "\r" not in proc.stderr
    assert proc.stderr.startswith(f"introspect: profiled PID {cpu_child.pid} for ")
    assert "samples" in proc.stderr


def test_top_limit(cpu_child: Child) -> None:
    proc = introspect("profile", str(cpu_child.pid), "-d", "1", "--top", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) in (2, 3)  # header, one row, maybe "(N more functions...)"
    assert lines[1].split()[2] == "cpu_heavy_fn"


def test_speedscope_default_name(cpu_child: Child, tmp_path: Path) -> None:
    proc = introspect("profile", str(cpu_child.pid), "-d", "1", "--format", "speedscope",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [written] = list(tmp_path.glob(f"profile-{cpu_child.pid}-*.speedscope.json"))
    data = json.loads(written.read_text())
    assert data["$schema"].startswith("https://www.speedscope.app/")
    assert f"wrote speedscope profile to {written.name}" in proc.stdout
    assert "https://www.speedscope.app/" in proc.stdout


def test_flamegraph_from_output_name(cpu_child: Child, tmp_path: Path) -> None:
    out = tmp_path / "cpu.svg"
    proc = introspect("profile", str(cpu_child.pid), "-d", "1", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in out.read_text() and "cpu_heavy_fn" in out.read_text()
    assert f"open it in a browser: {out.as_uri()}" in proc.stdout


def test_top_to_a_file(cpu_child: Child, tmp_path: Path) -> None:
    out = tmp_path / "top.txt"
    proc = introspect("profile", str(cpu_child.pid), "-d", "1", "-f", "top", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "cpu_heavy_fn" in out.read_text()


def test_hostile_function_names_come_out_escaped(hostile_child: Child) -> None:
    proc = introspect("profile", str(hostile_child.pid), "-d", "1", "--format", "top")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\u202e" not in proc.stdout
    first = proc.stdout.splitlines()[1]
    assert "evil_\\x1b[2J\\x1b[31mred\\u202e" in first
    assert "/tmp/evil\\x1b]0;pwned\\x07.py:" in first


def test_unknown_pid() -> None:
    pid = unused_pid()
    line = assert_one_line_error(introspect("profile", str(pid), "--duration", "1"))
    assert line == f"introspect: error: no process with PID {pid}"


def test_not_python(sleep_process: Child) -> None:
    line = assert_one_line_error(introspect("profile", str(sleep_process.pid), "-d", "1"))
    assert "does not look like a Python process" in line


def test_remote_target_refused() -> None:
    line = assert_one_line_error(introspect("profile", "example.com:9000", "-d", "1"))
    assert line.endswith("profile needs a PID or a local agent socket "
                         "(py-spy runs on this host)")


@pytest.mark.parametrize(("args", "needle"), [
    (["--duration", "0"], "--duration"),
    (["--duration", "1", "--rate", "0"], "--rate"),
    (["--duration", "1", "--top", "0"], "--top"),
    (["--duration", "1", "--native", "--nonblocking"], "--native or --nonblocking"),
    (["--duration", "1", "-o", "/nonexistent/dir/p.json"], "no such directory"),
])
def test_bad_options(cpu_child: Child, args: list[str], needle: str) -> None:
    line = assert_one_line_error(introspect("profile", str(cpu_child.pid), *args))
    assert needle in line


def test_choose_format_and_default_names() -> None:
    assert choose_format(None, None) == "top"
    assert choose_format(None, "x.svg") == "flamegraph"
    assert choose_format(None, "x.json") == "speedscope"
    assert choose_format("top", "x.json") == "top"
    name = default_output(123, "speedscope", 0).name
    assert name.startswith("profile-123-") and name.endswith(".speedscope.json")
    assert len(name) == len("profile-123-YYYYmmdd-HHMMSS.speedscope.json")
    assert default_output(5, "flamegraph").suffix == ".svg"


def test_progress_bar() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    bar(3.1, 10.0)
    bar(3.15, 10.0)  # throttled
    bar(10.0, 10.0)
    bar.finish()
    assert stream.getvalue() == "\r[###       ] 3.1/10.0s\r[##########] 10.0/10.0s\n"


def test_progress_bar_on_a_real_terminal(cpu_child: Child) -> None:
    """stderr on a pty: the `\\r[###   ] 1.2/2.0s` bar is drawn while py-spy records."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "introspect", "profile", str(cpu_child.pid),
                             "-d", "2"], stdout=subprocess.PIPE, stderr=slave, text=True,
                            env=env, cwd=REPO)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    err = b"".join(chunks).decode()
    assert proc.returncode == 0, err
    bars = [b for b in err.split("\r") if b.startswith("[")]
    assert len(bars) >= 5, err
    assert bars[-1].startswith("[" + "#" * 30 + "] 2.0/2.0s")
    assert "cpu_heavy_fn" in stdout
