"""Start real Python programs with the agent, wait for them by polling, always clean up.

    with AgentProcess.script(SOURCE) as proc:      # runs under `introspect run`
        proc.wait_for_line("ready")
        snap = proc.client().snapshot()
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from introspect.client.connection import Client
from introspect.protocol import discovery

T = TypeVar("T")
DEFAULT_DEADLINE = 20.0


def wait_until(predicate: Callable[[], T], timeout: float = DEFAULT_DEADLINE,
               interval: float = 0.05, message: str = "condition") -> T:
    """Poll `predicate` until it returns a truthy value; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last failure
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


class AgentProcess:
    """A child process (usually under `introspect run`) with line-buffered output capture."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.PIPE, env=full_env, cwd=cwd, text=True,
                                     start_new_session=True)
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, name, sink in ((self.proc.stdout, "out", self.stdout),
                                   (self.proc.stderr, "err", self.stderr)):
            threading.Thread(target=self._pump, args=(stream, name, sink), daemon=True).start()
        self._tmp: tempfile.TemporaryDirectory | None = None

    @classmethod
    def script(cls, source: str, agent_args: list[str] | None = None,
               env: dict[str, str] | None = None, under_run: bool = True) -> AgentProcess:
        tmp = tempfile.TemporaryDirectory(prefix="introspect-app-")
        path = Path(tmp.name) / "app.py"
        path.write_text(textwrap.dedent(source))
        if under_run:
            argv = [sys.executable, "-m", "introspect", "run", *(agent_args or []), "--",
                    sys.executable, str(path)]
        else:
            argv = [sys.executable, str(path)]
        proc = cls(argv, env=env, cwd=tmp.name)
        proc._tmp = tmp
        proc.path = path
        return proc

    def _pump(self, stream: Any, name: str, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)
            self.lines.put((name, line))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_line(self, needle: str, timeout: float = DEFAULT_DEADLINE) -> str:
        return wait_until(lambda: next((ln for ln in self.stdout + self.stderr if needle in ln),
                                       None), timeout, message=f"output line {needle!r}; "
                          f"stderr so far: {''.join(self.stderr)[-2000:]}")

    def wait_for_agent(self, timeout: float = DEFAULT_DEADLINE) -> Path:
        path = discovery.socket_path(self.pid)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited with {self.proc.returncode}: "
                                     f"{''.join(self.stderr)[-2000:]}")
            return path.exists()

        wait_until(ready, timeout, message=f"agent socket {path}")
        return path

    def client(self, **kwargs: Any) -> Client:
        self.wait_for_agent()
        return Client(str(self.pid), **kwargs).connect()

    def snapshot(self, **kwargs: Any) -> Any:
        with self.client() as c:
            return c.snapshot(**kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything the program left behind
        except (ProcessLookupError, PermissionError):
            pass
        if self._tmp is not None:
            self._tmp.cleanup()
