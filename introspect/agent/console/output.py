"""Where `print()` inside console code goes.

Console code runs on the app's loop thread, interleaved with the app's own tasks, so swapping
`sys.stdout` for the duration of an evaluation would capture the app's prints too. Instead
`sys.stdout`/`sys.stderr` are wrapped once by a proxy that asks a context variable where this
write belongs: the evaluation's task (and the tasks it creates, which copy its context) carry
an `EvaluationOutput`; everything else goes to the original stream, unchanged.

Capture ends when the evaluation ends: a task the console started (say, restarted workers)
writes to the app's own streams afterwards, so the app's logs never vanish into a console.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from typing import Any

DEFAULT_PENDING_LIMIT = 1024 * 1024  # characters held for a slow console client

current_output: contextvars.ContextVar[EvaluationOutput | None] = contextvars.ContextVar(
    "introspect_console_output", default=None)


class OutputSink:
    """Text written by one session's code, waiting to be sent. Bounded: past the limit,
    text is dropped and counted (a runaway print loop must not grow the host's memory)."""

    def __init__(self, notify: Callable[[], None],
                 limit: int = DEFAULT_PENDING_LIMIT) -> None:
        self._notify = notify
        self._limit = limit
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0
        self.closed = False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        wake = False
        with self._lock:
            if self._size + len(text) > self._limit:
                self._dropped += len(text)
            else:
                wake = not self._parts
                self._parts.append(text)
                self._size += len(text)
        if wake:
            self._notify()
        return len(text)

    def flush(self) -> None:
        pass

    def take(self) -> str:
        """Everything written so far (and a note of what was dropped); empties the sink."""
        with self._lock:
            text = "".join(self._parts)
            dropped, self._dropped = self._dropped, 0
            self._parts = []
            self._size = 0
        if dropped:
            text += f"\n[introspect: {dropped} characters of output dropped: the console " \
                    "client did not keep up]\n"
        return text


class EvaluationOutput:
    """One evaluation's route to its session's sink, open while the evaluation runs."""

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink
        self.active = True

    def write(self, text: str) -> int:
        if self.sink.closed:  # the session is gone: nobody to show it to
            return len(text)
        return self.sink.write(text)


class ConsoleAwareStream:
    """Stands in for `sys.stdout`/`sys.stderr`: console writes go to the session's sink,
    every other write (and every other attribute) to the original stream."""

    def __init__(self, original: Any) -> None:
        self._original = original

    def write(self, text: str) -> int:
        out = current_output.get()
        if out is not None and out.active:
            return out.write(text)
        return self._original.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        out = current_output.get()
        if out is None or not out.active:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, buffer, isatty...
        return getattr(self._original, name)


_install_lock = threading.Lock()
_installed: dict[str, ConsoleAwareStream] = {}
_users = 0


def acquire() -> None:
    """A console session or an evaluation starts: the proxies must be in place. Counted, so
    a program nobody has a console into pays nothing (the proxies go away after the last)."""
    global _users
    with _install_lock:
        _users += 1
        if _users == 1:
            _install()


def release() -> None:
    global _users
    with _install_lock:
        _users = max(0, _users - 1)
        if _users == 0:
            _uninstall()


def _install() -> None:
    """Wrap sys.stdout and sys.stderr (idempotent; a missing stream is left alone)."""
    for name in ("stdout", "stderr"):
        current = getattr(sys, name)
        if current is None or isinstance(current, ConsoleAwareStream):
            continue
        proxy = ConsoleAwareStream(current)
        _installed[name] = proxy
        setattr(sys, name, proxy)


def uninstall() -> None:
    """The agent stops: put the original streams back whoever still uses them."""
    global _users
    with _install_lock:
        _users = 0
        _uninstall()


def _uninstall() -> None:
    """Put the original streams back, unless the app replaced ours since (then it owns them).
    A write already inside a proxy finishes on the original stream: nothing is lost."""
    for name, proxy in list(_installed.items()):
        if getattr(sys, name) is proxy:
            setattr(sys, name, proxy._original)
        del _installed[name]
