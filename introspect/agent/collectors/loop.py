"""The event loop: lag (a probe timer on the loop), run-queue, timers, and "stuck right now".

The probe is a timer re-armed every `interval`; its lateness is the loop's lag. The time it is
overdue *now* — readable from any thread — is how long the loop has been stuck.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from array import array

try:
    from introspect.agent import _watchdog_accel as _accel
except ImportError:
    _accel = None  # type: ignore[assignment]

LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0)
WINDOW_SECONDS = 60.0


class Histogram:
    """A cumulative Prometheus-style histogram (counts per upper bound, sum, count)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # last = +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        out, acc = [], 0
        for bound, n in zip((*self.buckets, float("inf")), list(self.counts), strict=True):
            acc += n
            out.append((bound, acc))
        return out


class LagWindow:
    """The last `size` lag readings (monotonic time, lag) in two fixed arrays of floats: no
    object per reading. A deque of (time, lag) tuples held ~400 kB once full (10 minutes at
    10 beats a second) and made every full collection visit 4,096 more items (issue 17).
    Written by the loop thread; read by any: a read racing a write sees at worst one slot
    with the new time and the old lag."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._times = array("d", bytes(8 * size))
        self._lags = array("d", bytes(8 * size))
        self._next = 0
        self._count = 0

    def append(self, when: float, lag: float) -> None:
        i = self._next
        self._times[i] = when
        self._lags[i] = lag
        self._next = (i + 1) % self.size
        if self._count < self.size:
            self._count += 1

    def lags_since(self, cutoff: float) -> list[float]:
        """The lags read at or after `cutoff`, oldest first. Times only grow (the probe's
        monotonic clock), so the ring is two sorted runs: bisected, then sliced, in C. (A
        Python scan of the 4,096 slots, once a second for the history, was ~0.2 ms a second
        of the watchdog thread in an idle service.)"""
        count, start = self._count, self._next
        times, lags = self._times, self._lags
        if count < self.size:  # not wrapped yet: one run, 0..count
            first = bisect.bisect_left(times, cutoff, 0, count)
            return lags[first:count].tolist()
        older = bisect.bisect_left(times, cutoff, start, count)  # start..size-1, then 0..start-1
        newer = bisect.bisect_left(times, cutoff, 0, start)
        return lags[older:count].tolist() + lags[newer:start].tolist()


class LoopCollector:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_id: int | None = None
        self.thread_name = ""
        self.histogram = Histogram(LAG_BUCKETS)
        self._window = LagWindow()
        self._expected = 0.0
        self.due_at_attach = False  # `_expected` is the attach's, not the probe timer's
        self._first_beat = False  # `_start` is a beat: attached as the loop starts running
        # `_expected` where the blocking watchdog reads it without the GIL (a loop with no
        # Python selector to time-stamp, uvloop: blocks are "overdue since" this)
        self.due = _accel.DueStamp() if _accel is not None else None
        self.last_lag = 0.0
        # (due, ran) of the probe's last beat: where a block timed from `due` ended (a loop
        # with no Python selector, blocking.py `_finish`)
        self.last_run = (0.0, 0.0)
        self.beats = 0
        self.probe_errors = 0  # beats that raised (contained: the probe always re-arms)
        self._handle: asyncio.TimerHandle | None = None
        self._attachment = 0  # counts attaches and detaches: see `attach`
        self.on_beat: list = []  # callables run on the loop thread each beat (cheap only)
        # callables(loop) run by `attach`, on the attaching thread, before the loop runs
        # anything of ours (the watchdog time-stamps a loop's select() from its first run)
        self.on_attach: list = []

    def attach(self, loop: asyncio.AbstractEventLoop, starting: bool = False) -> None:
        """`starting`: on the loop's thread as it starts running, before its first iteration
        (core.py `_loop_runs`): like a loop not running yet, nothing of the app's is under way."""
        self.loop = loop
        # `start()` from one of the loop's own callbacks: the loop is busy now and stays so
        # until it runs `_start`. Due now, so an app that blocks right after `start()` is
        # seen overdue (the watchdog's fallback, blocking.py), its stack can be taken.
        on_loop = asyncio._get_running_loop() is loop
        if on_loop:
            self._on_loop_thread()
        # `starting`: due now too, and `_start` is the probe's first beat. The app's first
        # steps may run before it (`run_until_complete` queued its task first): a block
        # there is lag as well. No `due_at_attach`: the agent's work is done.
        self._set_expected(time.monotonic() if on_loop else 0.0)
        self.due_at_attach = on_loop and not starting
        self._first_beat = starting
        for callback in list(self.on_attach):
            try:
                callback(loop)
            except Exception:
                pass
        # Each callback of ours carries the attachment it was scheduled for and does nothing
        # once that is over: a `_start` or `_probe` still queued on a loop we left would
        # otherwise run on that loop's thread and arm the probe on the newly observed loop,
        # from the wrong thread (call_at is not thread-safe) and as a second timer chain.
        attachment = self._attachment = self._attachment + 1
        # threadsafe also from the loop's thread: it wakes a loop that is in select()
        if loop.is_running():
            loop.call_soon_threadsafe(self._start, loop, attachment)
        else:
            loop.call_soon(self._start, loop, attachment)

    def _on_loop_thread(self) -> None:
        self.thread_id = threading.get_ident()
        self.thread_name = threading.current_thread().name

    def _start(self, loop: asyncio.AbstractEventLoop, attachment: int) -> None:
        if attachment != self._attachment:  # detached (maybe attached elsewhere) meanwhile
            return
        self._on_loop_thread()
        if self._first_beat:
            self._first_beat = False
            self._probe(loop, attachment)  # lateness since the attach; arms the timer
            return
        now = time.monotonic()
        if self.due_at_attach:  # the loop is back from the start() that attached it
            self.last_run = (self._expected, now)
        self._set_expected(now + self.interval)
        self.due_at_attach = False
        self._arm(loop, attachment)

    def _set_expected(self, when: float) -> None:
        self._expected = when
        if self.due is not None:
            self.due.set(when)

    def _arm(self, loop: asyncio.AbstractEventLoop, attachment: int) -> None:
        """On `loop`'s thread, for the attachment that is current (checked by the caller)."""
        if loop.is_closed():
            if attachment == self._attachment:
                self._handle = None
            return
        handle = loop.call_at(loop.time() + self.interval, self._probe, loop, attachment)
        if attachment == self._attachment:
            self._handle = handle
        else:  # detached while this beat ran: `detach` could not cancel this one
            handle.cancel()

    def _probe(self, loop: asyncio.AbstractEventLoop, attachment: int) -> None:
        if attachment != self._attachment:  # a timer of a loop we left (see `attach`)
            return
        try:
            now = time.monotonic()
            lag = max(0.0, now - self._expected)
            self.last_lag = lag
            self.histogram.observe(lag)
            self._window.append(now, lag)
            self.beats += 1
            self.last_run = (self._expected, now)
            self._set_expected(now + self.interval)
        except Exception:  # never the app's loop's problem; the next beat tries again
            self.probe_errors += 1
        for callback in self.on_beat:
            try:
                callback()
            except Exception:
                pass
        self._arm(loop, attachment)

    def detach(self) -> None:
        self._attachment += 1  # what is still queued or armed on the loop does nothing now
        handle, self._handle = self._handle, None
        loop = self.loop
        self.loop = None
        self.due_at_attach = self._first_beat = False
        if handle is None or loop is None:
            return
        try:
            if loop.is_closed():
                return
            if loop.is_running() and asyncio._get_running_loop() is not loop:
                loop.call_soon_threadsafe(handle.cancel)  # its thread may be in the timer heap
            else:  # a loop at rest (or this is its thread): no timer of ours left on it now
                handle.cancel()
        except RuntimeError:
            pass

    # --- reads (any thread) ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        loop = self.loop
        return bool(loop is not None and loop.is_running())

    def blocked_for(self) -> float:
        """How long the loop has been unable to run its probe, right now."""
        if not self.running or not self._expected:
            return 0.0
        return max(0.0, time.monotonic() - self._expected)

    def overdue_since(self) -> float | None:
        """Since when (monotonic) the probe has been due and not run, or None: a stable
        start for a block, where `now - blocked_for()` would move with every reading."""
        expected = self._expected
        if not self.running or not expected or time.monotonic() <= expected:
            return None
        return expected

    def window_stats(self, seconds: float = WINDOW_SECONDS) -> tuple[float, float, float]:
        """(p50, p99, max) of lag over the recent window; includes a stuck-right-now value."""
        cutoff = time.monotonic() - seconds
        values = sorted([*self._window.lags_since(cutoff), self.blocked_for()])
        if not values:
            return 0.0, 0.0, 0.0

        def pct(q: float) -> float:
            return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]

        return pct(0.5), pct(0.99), values[-1]

    def ready(self) -> int:
        loop = self.loop
        try:
            return len(loop._ready) if loop is not None else 0  # type: ignore[attr-defined]
        except Exception:
            return 0

    def scheduled(self) -> int:
        loop = self.loop
        try:
            n = len(loop._scheduled) if loop is not None else 0  # type: ignore[attr-defined]
        except Exception:
            return 0
        return max(0, n - (1 if self._handle is not None else 0))
