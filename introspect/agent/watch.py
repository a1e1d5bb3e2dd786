"""The blocking watchdog's clock and wait (introspect/agent/blocking.py uses them).

`SelectorClock` time-stamps the loop's entries to and returns from `select()`. The watch is
the watchdog thread's sleep between looks at the loop: with the C module
(`_watchdog_accel.c`, which says why) the looks that need no Python are made there without
the GIL: the loop idle in select(), or busy for less than the threshold with its thread on the
CPU. `PyWatch` is the same interface in Python, where every look is Python's.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
import threading
import time
from typing import Any

try:
    from introspect.agent import _watchdog_accel as _accel
except ImportError:  # not built: every look is made in Python (`PyWatch`)
    _accel = None  # type: ignore[assignment]

DEADLINE_MARGIN = 0.0005  # a timed wait may return a hair early
# A sample whose gap had the loop thread off the CPU for less than this share of it has
# almost no held time to add (blocking.py's `_tick`): the C wait skips it rather than take the GIL.
HELD_OFF_CPU_SHARE = 0.1
NONE = math.nan  # "no value" in the state shared with the C wait
MODE_EVERY, MODE_IDLE, MODE_HELD = 0, 1, 2  # which looks the C wait may make alone


class SelectorClock:
    """Time-stamps the loop's entries to and returns from `select()` (on the instance only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.selector = getattr(loop, "_selector", None)
        self.entered_at = 0.0
        self.returned_at = 0.0
        self.in_select = True
        self.active = False
        self.native: Any = None  # the C clock, when built: its stamps are read without the GIL

    def install(self) -> bool:
        selector = self.selector
        original = getattr(selector, "select", None)
        if original is None or getattr(original, "_introspect_clock", None) is not None or \
                (_accel is not None and isinstance(original, _accel.SelectClock)):
            return False
        if _accel is not None:
            native = _accel.SelectClock(original)
            try:
                selector.select = native  # type: ignore[union-attr]
            except (AttributeError, TypeError):
                return False
            self.native = native
            self.active = True
            return True
        clock = self
        monotonic = time.monotonic

        def select(timeout: float | None = None) -> Any:
            clock.entered_at = monotonic()
            clock.in_select = True
            try:
                return original(timeout)
            finally:
                clock.returned_at = monotonic()
                clock.in_select = False

        select._introspect_clock = self  # type: ignore[attr-defined]
        try:
            selector.select = select  # type: ignore[union-attr]
        except (AttributeError, TypeError):
            return False  # a selector without an instance dict: lag-probe fallback
        self.active = True
        return True

    def uninstall(self) -> None:
        if self.active and self.selector is not None:
            try:
                del self.selector.select
            except AttributeError:
                pass
        self.active = False

    def stamps(self) -> tuple[float, float, bool]:
        """(entered_at, returned_at, in_select) as the loop thread last left them."""
        native = self.native
        if native is not None:
            return native.entered_at, native.returned_at, native.in_select
        return self.entered_at, self.returned_at, self.in_select


class ClockHandoff:
    """Clocks installed by the thread that attaches a loop, for the watchdog to adopt.

    The watchdog installs a clock only at its next look: by then a loop that blocked at once
    (a sync migration at start-up) has passed its last select(), and the clock never sees it
    return. So it is installed at attach where no select() can be under way: a loop not
    running yet, or from its own thread (`start()` in one of its callbacks). The lock keeps
    that thread and the watchdog from both wrapping one selector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prepared: tuple[asyncio.AbstractEventLoop, SelectorClock] | None = None

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.is_running() and asyncio._get_running_loop() is not loop:
            return  # another thread's loop, maybe in select(): the watchdog's to install
        clock = SelectorClock(loop)
        with self._lock:
            if not clock.install():
                return
            stale, self._prepared = self._prepared, (loop, clock)
        if stale is not None:
            stale[1].uninstall()

    def adopt(self, loop: asyncio.AbstractEventLoop) -> SelectorClock | None:
        """The clock prepared for `loop`, else one installed now (None: no selector)."""
        with self._lock:
            prepared, self._prepared = self._prepared, None
            if prepared is not None and prepared[0] is loop:
                return prepared[1]
            if prepared is not None:
                prepared[1].uninstall()  # its loop was replaced before the watchdog looked
            clock = SelectorClock(loop)
            return clock if clock.install() else None

    def discard(self) -> None:
        with self._lock:
            prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared[1].uninstall()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been held at the fork


class PyWatch:
    """The watchdog's wait without the C module: every look is made in Python. Same
    interface and state as `_watchdog_accel.Watch`."""

    looks_in_c = busy_looks_in_c = 0

    def __init__(self, poll: float) -> None:
        self.poll = poll
        self.returns = 0
        self.last_tick = self.held_cpu = self.seen_wall = self.seen_cpu = NONE
        self._stop = threading.Event()

    def set_cpu_clock(self, clock_id: int | None) -> None:
        pass

    def stop(self) -> None:
        self._stop.set()

    def wait(self, clock: Any, next_sample: float, deadline: float | None, due: Any,
             mode: int) -> tuple[bool, float, bool, float]:
        if isinstance(due, PyStamp):  # read once: every look is Python's here anyway
            due = due.value if due.value > 0.0 else None
        wake = min(next_sample, math.inf if deadline is None else deadline,
                   math.inf if due is None else due)
        if self._stop.wait(max(0.0, wake - time.monotonic())):
            return True, time.monotonic(), False, next_sample
        now = time.monotonic()
        sample = now >= next_sample
        if sample:
            next_sample = now + self.poll * (0.5 + 0.5 * random.random())
        self.returns += 1
        return False, now, sample, next_sample


class PyStamp:
    """`_watchdog_accel.DueStamp` without the C module: a time another thread may move on
    (0.0: not armed)."""

    value = 0.0

    def set(self, value: float) -> None:
        self.value = value


def new_stamp() -> Any:
    """A due time shared with the watchdog's wait, which reads it again at each wake-up."""
    return PyStamp() if _accel is None else _accel.DueStamp()


class _HandingOffEpoll:
    """The agent server's `select.epoll`, its `poll()` made in C (`_watchdog_accel.epoll_poll`):
    from each wake-up until it polls again, the server thread counts as wanting the GIL, and
    the app's loop (its select() wrapper) lets it go first. Without it a saturated loop kept a
    client's first answer waiting for 10-20 s (see `_watchdog_accel.c`, "GIL hand-off")."""

    def __init__(self, epoll: Any) -> None:
        self._epoll = epoll

    def poll(self, timeout: float | None = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        return _accel.epoll_poll(self._epoll.fileno(), -1.0 if timeout is None else
                                 float(timeout), maxevents)

    def register(self, fd: int, eventmask: int) -> None:
        self._epoll.register(fd, eventmask)

    def modify(self, fd: int, eventmask: int) -> None:
        self._epoll.modify(fd, eventmask)

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def fileno(self) -> int:
        return self._epoll.fileno()

    def close(self) -> None:
        self._epoll.close()

    @property
    def closed(self) -> bool:
        return self._epoll.closed


def server_selector() -> selectors.BaseSelector:
    """The selector of the agent server's private loop: an epoll one whose waits hand the GIL
    off (`_HandingOffEpoll`) when the C module is built, else the default."""
    selector = selectors.DefaultSelector()
    if _accel is not None and isinstance(selector, selectors.EpollSelector) and \
            hasattr(selector, "_selector"):
        selector._selector = _HandingOffEpoll(selector._selector)  # type: ignore[attr-defined]
    return selector


def new_watch(poll: float, threshold: float) -> Any:
    if _accel is None:
        return PyWatch(poll)
    return _accel.Watch(poll, threshold, DEADLINE_MARGIN, HELD_OFF_CPU_SHARE,
                        random.getrandbits(64))
