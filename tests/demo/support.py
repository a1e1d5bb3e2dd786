"""Helpers for the demo's tests: run `python -m introspect.demo` as a real child process and
follow its stderr line by line; poll in-process conditions with a deadline. (A module of its own,
not conftest: the suite has several conftest modules.)"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

INTENDED_FAILURE = re.compile(
    r"^introspect\.demo\.unhandled_errors\.Demo(Thread|Callback|Unretrieved)Error: "
    r".*\(intended demo failure\)$"
)


class DemoProcess:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "introspect.demo", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                finished = self.popen.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or finished:
                    raise AssertionError(
                        f"no matching line within {timeout} s; stderr so far:\n"
                        + "\n".join(self.lines[-40:])
                    )
                self._changed.wait(remaining)

    def wait_exit(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return code

    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def unexpected_tracebacks(lines: list[str]) -> list[str]:
    """The final exception line of every traceback that is not one of the intended failures."""
    unexpected = []
    for index, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last):"):
            continue
        end = index + 1
        while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
            end += 1
        final = lines[end] if end < len(lines) else "<end of output>"
        if not INTENDED_FAILURE.match(final):
            unexpected.append(final)
    return unexpected


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` on the event loop until it holds, or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
