"""Real target processes for the py-spy tests, waited for by reading the line they print
(polled with a deadline) and always killed by the fixtures in conftest.py."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

PYSPY = Path(sys.executable).parent / "py-spy"

# Main thread spins in cpu_heavy_fn; a thread named "sleeper" blocks in sleeping_fn.
CPU_CHILD = textwrap.dedent("""
    import threading, time

    def sleeping_fn():
        time.sleep(3600)

    def cpu_heavy_fn():
        x = 0
        while True:
            x += 1

    threading.Thread(target=sleeping_fn, name="sleeper", daemon=True).start()
    print("ready", flush=True)
    cpu_heavy_fn()
""")

# A function whose name and file name carry terminal escape sequences.
HOSTILE_CHILD = textwrap.dedent(r"""
    import threading, time

    SRC = "def spin():\n    x = 0\n    while True:\n        x += 1\n"
    ns = {}
    exec(compile(SRC, "/tmp/evil\x1b]0;pwned\x07.py", "exec"), ns)
    spin = ns["spin"]
    evil = "evil_\x1b[2J\x1b[31mred\u202e"
    spin.__code__ = spin.__code__.replace(co_name=evil, co_qualname=evil)

    def sleeping_fn():
        time.sleep(3600)

    threading.Thread(target=sleeping_fn, name="sleep\x1b[5mer", daemon=True).start()
    print("ready", flush=True)
    spin()
""")


class Child:
    """A child process whose stdout lines are collected by a reader thread."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_line(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"child {self.pid} did not print {text!r} in {timeout}s "
                                     f"(exit status {self.proc.poll()})")
            try:
                if self.lines.get(timeout=min(left, 0.2)) == text:
                    return
            except queue.Empty:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise AssertionError(
                        f"child exited with {self.proc.returncode}: {err}") from None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def unused_pid() -> int:
    """A PID no process has right now."""
    for pid in range(4_000_000, 3_000_000, -7919):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError("no free PID found")
