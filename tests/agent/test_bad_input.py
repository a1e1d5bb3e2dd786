"""User mistakes get one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import AgentProcess


def introspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "introspect", *args], capture_output=True,
                          text=True, timeout=30)


def assert_one_line_error(out: subprocess.CompletedProcess, needle: str) -> None:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("introspect: error:"), lines[0]
    assert needle in lines[0]


def test_unknown_pid():
    assert_one_line_error(introspect("snapshot", "999999999"), "no process with PID")


def test_dead_socket(tmp_path: Path):
    path = tmp_path / "agent-1.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens
    assert_one_line_error(introspect("snapshot", str(path)), "connection refused")


def test_missing_socket_path(tmp_path: Path):
    assert_one_line_error(introspect("snapshot", str(tmp_path / "nope.sock")), "no such socket")


def test_process_without_agent():
    with AgentProcess.script("import time\nprint('ready', flush=True)\ntime.sleep(60)\n",
                             under_run=False) as proc:
        proc.wait_for_line("ready")
        assert_one_line_error(introspect("snapshot", str(proc.pid)), "has no introspect agent")


@pytest.mark.parametrize("cmd,needle", [
    (["run", "--", sys.executable, "/definitely/missing.py"], "no such file"),
    (["run", "--", "no-such-command-xyz"], "command not found"),
    (["run"], "nothing to run"),
    (["run", "--block-threshold", "-1", "--", sys.executable, "-c", "0"], "threshold"),
    (["run", "--listen", "tcp://127.0.0.1:0", "--", sys.executable, "-c", "0"], "token"),
    (["snapshot", "host:notaport"], "bad address"),
])
def test_bad_command_lines(cmd: list[str], needle: str):
    assert_one_line_error(introspect(*cmd), needle)


def test_bad_environment_value():
    out = subprocess.run([sys.executable, "-m", "introspect", "run", "--", sys.executable, "-c",
                          "0"], capture_output=True, text=True, timeout=30,
                         env={**__import__("os").environ, "INTROSPECT_BLOCK_THRESHOLD": "soon"})
    assert_one_line_error(out, "INTROSPECT_BLOCK_THRESHOLD")
