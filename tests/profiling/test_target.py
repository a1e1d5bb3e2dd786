"""TARGET -> PID for py-spy: PIDs and local agent sockets; remote targets refused clearly."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from introspect.errors import UserError
from introspect.profiling.target import NEEDS_LOCAL, resolve_pid
from tests.profiling.support import unused_pid


def test_pid() -> None:
    assert resolve_pid(str(os.getpid())) == os.getpid()
    assert resolve_pid(f" {os.getpid()} ") == os.getpid()


@pytest.mark.parametrize("text", ["0", "-5"])
def test_bad_pid(text: str) -> None:
    with pytest.raises(UserError, match=f"^no process with PID {int(text)}$"):
        resolve_pid(text)


def test_unknown_pid() -> None:
    pid = unused_pid()
    with pytest.raises(UserError, match=f"^no process with PID {pid}$"):
        resolve_pid(str(pid))


def test_agent_socket(tmp_path: Path) -> None:
    path = tmp_path / f"agent-{os.getpid()}.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        assert resolve_pid(str(path)) == os.getpid()
        assert resolve_pid(f"unix:{path}") == os.getpid()


def test_stale_agent_socket(tmp_path: Path) -> None:
    pid = unused_pid()
    path = tmp_path / f"agent-{pid}.sock"
    path.touch()
    with pytest.raises(UserError, match=f"^no process with PID {pid} \\(stale agent socket"):
        resolve_pid(str(path))


@pytest.mark.parametrize("text", ["localhost:9000", "tcp://10.0.0.1:80", "myservice",
                                  "/nonexistent/agent-1.sock", "abc.sock"])
def test_not_local(text: str) -> None:
    with pytest.raises(UserError) as info:
        resolve_pid(text)
    assert str(info.value) == NEEDS_LOCAL


def test_socket_with_other_name(tmp_path: Path) -> None:
    path = tmp_path / "other.sock"
    path.touch()
    with pytest.raises(UserError, match="needs a PID or a local agent socket"):
        resolve_pid(str(path))
