"""Shared set-up for the security tests: a second, unprivileged user (made once per session,
as root — CI runs as root) and a way to run code as that user in a forked child.

The child only makes syscalls and reports over a pipe (it never returns into pytest), like
tests/attach/test_transports.py does for its "nobody" peer.
"""

from __future__ import annotations

import os
import pwd
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

OTHER_USER = "introspect-test-other"
DEADLINE = 20.0


@dataclass(frozen=True)
class OtherUser:
    name: str
    uid: int
    gid: int

    def become(self) -> None:
        """Drop to this user (in a forked child)."""
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)


@pytest.fixture(scope="session")
def other_user() -> OtherUser:
    if os.getuid() != 0:
        pytest.fail("the cross-user security tests must run as root: they create the "
                    f"unprivileged user {OTHER_USER!r} and act as it (CI runs as root)")
    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", OTHER_USER], check=True, capture_output=True,
                       timeout=30)
        entry = pwd.getpwnam(OTHER_USER)
    assert entry.pw_uid != 0
    return OtherUser(OTHER_USER, entry.pw_uid, entry.pw_gid)


class Child:
    """A forked child running as another user; it writes lines to a pipe we read."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self.pid = pid
        self._fd = read_fd
        self._buffer = b""
        self.lines: list[str] = []

    def _read_available(self, timeout: float) -> None:
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if ready:
            chunk = os.read(self._fd, 65536)
            self._buffer += chunk
            *done, self._buffer = self._buffer.split(b"\n")
            self.lines += [line.decode() for line in done]
            if not chunk:
                raise EOFError

    def wait_for(self, prefix: str, deadline: float = DEADLINE) -> str:
        """The first line starting with `prefix`, polling the pipe until the deadline."""
        end = time.monotonic() + deadline
        while True:
            found = next((line for line in self.lines if line.startswith(prefix)), None)
            if found is not None:
                return found
            if time.monotonic() > end:
                raise AssertionError(f"child said {self.lines}, never {prefix!r}")
            try:
                self._read_available(0.05)
            except EOFError:
                found = next((line for line in self.lines if line.startswith(prefix)), None)
                if found is None:
                    raise AssertionError(
                        f"child ended after {self.lines}, never {prefix!r}") from None
                return found

    def finish(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self._fd)


@pytest.fixture
def as_other(other_user: OtherUser) -> Iterator[Callable[[Callable[[Callable[[str], None]],
                                                                    None]], Child]]:
    """`as_other(body)` forks a child that becomes the other user and runs `body(say)`;
    `say(line)` reports to the test. Children are killed at the end of the test."""
    children: list[Child] = []

    def start(body: Callable[[Callable[[str], None]], None]) -> Child:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: syscalls only, and leave with os._exit
            code = 0
            try:
                os.close(read_fd)

                def say(line: str) -> None:
                    os.write(write_fd, line.encode() + b"\n")

                other_user.become()
                body(say)
            except BaseException as exc:
                try:
                    os.write(write_fd, f"error {type(exc).__name__}: {exc}\n".encode())
                finally:
                    code = 1
            os._exit(code)
        os.close(write_fd)
        child = Child(pid, read_fd)
        children.append(child)
        return child

    yield start
    for child in children:
        child.finish()
