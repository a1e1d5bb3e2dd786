"""Busy time per task and per kind (observer's reductions, tokio-console's busy/polls).

Always on, statistical: `ITIMER_PROF` fires ~100 times per CPU-second and a tiny `SIGPROF`
handler (on the main thread, between bytecodes) adds the main thread's CPU time since the
previous tick to the task running right now (`asyncio.tasks._current_tasks`). Measured cost on
workload A: within noise of plain (benchmarks/results/detectors.md). Only for a loop on the
main thread; if the app or a profiler already uses SIGPROF/ITIMER_PROF we leave it alone.
The timer is cancelled at agent stop, at exit and before `os.exec*` (a late SIGPROF with the
default action kills the process: "Profiling timer expired").

On demand, bounded in time: exact accounting (`exact(seconds)`): every step (poll) of every
task timed, with its scheduling delay (made ready → run) and a histogram per kind. It runs a
copy of `BaseEventLoop._run_once` with the timing inline (dispatched from the loop's class, only
when the stdlib's version is the one the copy was made from), so there is no extra Python call
per step: that is what keeps it near 0.9x where a `Handle._run` wrapper costs 0.82x.
"""

from __future__ import annotations

import asyncio
import atexit
import bisect
import collections
import contextlib
import hashlib
import heapq
import os
import random
import signal
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from introspect.agent.core import Agent

SAMPLE_INTERVAL = 0.01  # CPU seconds between samples
MAX_TASKS = 100_000  # per-task entries kept; beyond that only kinds are accounted
EXACT_ATTR = "_introspect_exact"  # a task's stats list in the current exact session
PRUNE_EVERY = 10.0  # seconds between removals of finished tasks from the per-task map
MAX_EXACT_SECONDS = 600.0
META_ATTR = "_introspect_meta"


class BusySampler:
    """The `sampling` extension: `busy_by_kind()`, `task_busy()`, `exact(seconds)`."""

    def __init__(self, agent: Agent, interval: float = SAMPLE_INTERVAL) -> None:
        self.agent = agent
        self.interval = interval
        self.wanted = bool(getattr(agent.config, "sampling", True))
        self.active = False
        self.reason = "waiting for an event loop on the main thread" if self.wanted \
            else "disabled (INTROSPECT_SAMPLING=0)"
        self.samples = 0
        self.unattributed_seconds = 0.0  # main-thread CPU outside any task (loop, callbacks)
        self._by_kind: dict[str, float] = {}
        self._by_task: dict[int, list[Any]] = {}  # seq -> [seconds, weakref(task)]
        self._last_cpu = 0.0
        self._gap = interval  # process CPU the timer waits before the next tick
        self._next_prune = 0.0
        self._saved_exec: dict[str, Any] = {}
        self._atexit_registered = False
        self._stopped = False
        self.session: ExactSession | None = None
        agent.loop_probe.on_beat.append(self._on_beat)

    # --- the signal handler: keep it tiny --------------------------------------------------
    def _on_sigprof(self, signum: int, frame: Any) -> None:
        try:
            now = time.thread_time()
            # Each tick stands for `interval` of process CPU, scaled by the main thread's
            # share of it since the previous tick (other threads' CPU also fires the timer).
            # Not the raw delta: with jittered ticks, a long gap before a tick is more likely
            # to end inside a long step... and then short steps would be over-weighted.
            delta = (now - self._last_cpu) * self.interval / self._gap
            self._last_cpu = now
            self.samples += 1
            # Jitter the next tick: a fixed period aliases with periodic work (a 25 ms cycle
            # sampled every 10 ms always lands on the same two phases).
            self._gap = self.interval * (0.5 + random.random())
            signal.setitimer(signal.ITIMER_PROF, self._gap, self.interval)
            loop = self.agent.loop
            task = asyncio.tasks._current_tasks.get(loop) if loop is not None else None
            meta = getattr(task, META_ATTR, None)
            if meta is None:
                self.unattributed_seconds += delta
                return
            kind = meta.kind
            self._by_kind[kind] = self._by_kind.get(kind, 0.0) + delta
            entry = self._by_task.get(meta.seq)
            if entry is not None:
                entry[0] += delta
            elif len(self._by_task) < MAX_TASKS:
                self._by_task[meta.seq] = [delta, weakref.ref(task)]
        except Exception:
            pass  # never raise into whatever task the signal interrupted

    # --- arming (on the loop thread, from the lag probe's beat) ----------------------------
    def _on_beat(self) -> None:
        if self.active:
            now = time.monotonic()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                self._prune()
            if signal.getsignal(signal.SIGPROF) != self._on_sigprof:
                self.active = False  # the app took SIGPROF over: its timer, its handler
                self.reason = "SIGPROF handler replaced by the application"
            return
        if self.wanted and not self._stopped and self.reason.startswith("waiting"):
            self._arm()

    def _arm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.reason = "the event loop is not on the main thread (SIGPROF runs there)"
            return
        handler = signal.getsignal(signal.SIGPROF)
        if handler not in (signal.SIG_DFL, None) or signal.getitimer(signal.ITIMER_PROF) != \
                (0.0, 0.0):
            self.reason = "SIGPROF / ITIMER_PROF already in use (another profiler?)"
            return
        signal.signal(signal.SIGPROF, self._on_sigprof)
        signal.siginterrupt(signal.SIGPROF, False)  # restart syscalls, never EINTR the app
        self._last_cpu = time.thread_time()
        self._wrap_exec()
        if not self._atexit_registered:
            atexit.register(self._cancel_timer)
            self._atexit_registered = True
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        self.active = True
        self.reason = "sampling"

    def _cancel_timer(self) -> None:
        if signal.getsignal(signal.SIGPROF) == self._on_sigprof:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
        self.active = False

    def _wrap_exec(self) -> None:
        """Interval timers survive execve(2): cancel ours first, then chain to the original."""
        cancel = self._cancel_timer
        for name in ("execv", "execve"):
            original = getattr(os, name)
            if getattr(original, "_introspect_original", None) is not None:
                continue

            def exec_without_timer(*args: Any, _original: Any = original) -> Any:
                cancel()
                return _original(*args)

            exec_without_timer._introspect_original = original  # type: ignore[attr-defined]
            exec_without_timer.__doc__ = original.__doc__
            self._saved_exec[name] = original
            setattr(os, name, exec_without_timer)

    def _prune(self) -> None:
        for seq, entry in list(self._by_task.items()):
            task = entry[1]()
            if task is None or task.done():
                self._by_task.pop(seq, None)

    # --- lifecycle ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopped = True
        try:
            self.agent.loop_probe.on_beat.remove(self._on_beat)
        except ValueError:
            pass
        self._cancel_timer()
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGPROF) == self._on_sigprof:
            signal.signal(signal.SIGPROF, signal.SIG_DFL)
        for name, original in self._saved_exec.items():
            if getattr(getattr(os, name), "_introspect_original", None) is original:
                setattr(os, name, original)
        self._saved_exec.clear()
        if self.session is not None:
            self.session.stop()

    # --- reads (any thread) ------------------------------------------------------------------
    def busy_by_kind(self) -> dict[str, float]:
        """Seconds of loop-thread CPU per task kind since start (statistical)."""
        return dict(self._by_kind)

    def task_busy(self) -> dict[int, float]:
        """Seconds per live task id (`TaskMeta.seq`), statistical; finished tasks drop out."""
        return {seq: entry[0] for seq, entry in list(self._by_task.items())}

    def status(self) -> dict[str, Any]:
        return {"sampling": self.active, "reason": self.reason, "samples": self.samples,
                "interval": self.interval, "exact": exact_available(self.agent.loop)[1]}

    # --- exact accounting ----------------------------------------------------------------------
    def exact(self, seconds: float) -> ExactSession:
        """Start exact accounting for `seconds` (at most 600) and return the session; its
        `report()` can be read any time, during or after. Raises RuntimeError if the observed
        loop can't do it (no loop, uvloop, a loop class with its own `_run_once`)."""
        loop = self.agent.loop
        ok, why = exact_available(loop)
        if not ok or loop is None:
            raise RuntimeError(f"exact accounting unavailable: {why}")
        seconds = max(0.0, min(float(seconds), MAX_EXACT_SECONDS))
        if self.session is not None:
            self.session.stop()
        self.session = ExactSession(loop, seconds).start()
        return self.session

    def exact_report(self) -> dict[str, Any] | None:
        session = self.session
        return session.report() if session is not None else None


def start_for_agent(agent: Agent) -> BusySampler:
    return BusySampler(agent)


# --- exact accounting: a timed copy of the loop's iteration ----------------------------------
# The stdlib `BaseEventLoop._run_once` the copy below was made from (CPython 3.11.7); on any
# other version exact mode says it is unavailable rather than run a stale copy.
KNOWN_RUN_ONCE = {"8e9418ec927006d0"}
HIST_BUCKETS = 32  # log2 buckets of microseconds: bucket b holds [2**(b-1), 2**b) us


def _fingerprint(fn: Any) -> str:
    code = fn.__code__
    return hashlib.sha256(code.co_code + repr(code.co_names).encode()).hexdigest()[:16]


def exact_available(loop: asyncio.AbstractEventLoop | None) -> tuple[bool, str]:
    if loop is None:
        return False, "no event loop observed yet"
    base = asyncio.base_events.BaseEventLoop
    if not isinstance(loop, base) or getattr(type(loop), "_run_once", None) not in (
            base._run_once, _dispatch_run_once):
        return False, f"{type(loop).__module__}.{type(loop).__qualname__} runs its own loop " \
            "iteration (uvloop?): only sampling and lag-based blocking detection apply"
    if _fingerprint(base._run_once) not in KNOWN_RUN_ONCE:
        return False, "this Python's asyncio loop iteration differs from the one exact mode " \
            "was written for"
    return True, "available"


# bisect_right(_EDGES, seconds) == min(int(seconds * 1e6).bit_length(), HIST_BUCKETS - 1)
_EDGES = [2.0 ** k / 1e6 for k in range(HIST_BUCKETS - 1)]


def _bucket_bounds() -> list[float]:
    return [2.0 ** b / 1e6 for b in range(HIST_BUCKETS)]


_ACTIVE: dict[int, ExactSession] = {}  # id(loop) → its running exact session


def _dispatch_run_once(loop: Any) -> None:
    session = _ACTIVE.get(id(loop))
    if session is None or session.loop is not loop:
        return asyncio.base_events.BaseEventLoop._run_once(loop)
    return session._run_once_timed()


class ExactSession:
    """Per-task steps, busy time and scheduling delay, for a bounded time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.deadline = self.started + seconds
        self.ended: float | None = None
        # seq -> [steps, busy, delay_sum, delay_max, kind_stats, name, kind]
        self.tasks: dict[int, list[Any]] = {}
        # kind -> [steps, busy, delay_sum, busy_hist, delay_hist]
        self.kinds: dict[str, list[Any]] = {}
        self.callback_steps = 0
        self.callback_busy = 0.0
        self._marks: collections.deque[list[Any]] = collections.deque()
        self._known = 0  # run-queue entries covered by marks

    def start(self) -> ExactSession:
        # On the loop's class, dispatching by loop: an attribute on the loop instance would
        # de-specialise every method lookup on it for good (CPython 3.11), even after `del`.
        cls = type(self.loop)
        _ACTIVE[id(self.loop)] = self
        if cls.__dict__.get("_run_once") is not _dispatch_run_once:
            cls._run_once = _dispatch_run_once  # type: ignore[attr-defined]
        return self

    def stop(self) -> None:
        if self.ended is None:
            self.ended = time.perf_counter()
        if _ACTIVE.get(id(self.loop)) is self:
            del _ACTIVE[id(self.loop)]
        cls = type(self.loop)
        still_used = any(type(s.loop) is cls for s in list(_ACTIVE.values()))
        if not still_used and cls.__dict__.get("_run_once") is _dispatch_run_once:
            with contextlib.suppress(AttributeError, TypeError):
                del cls._run_once

    @property
    def running(self) -> bool:
        return self.ended is None

    def _stats_for(self, meta: Any, task: Any) -> list[Any]:
        """The task's stats list, cached on the task itself (one attribute lookup per step
        after this); beyond MAX_TASKS tasks share one list per kind."""
        kind = self.kinds.get(meta.kind)
        if kind is None:
            kind = self.kinds[meta.kind] = [0, 0.0, 0.0, [0] * HIST_BUCKETS,
                                            [0] * HIST_BUCKETS, None]
        if len(self.tasks) < MAX_TASKS:
            stats = [0, 0.0, 0.0, 0.0, kind, task.get_name(), meta.kind, self]
            self.tasks[meta.seq] = stats
        else:
            stats = kind[5]
            if stats is None:
                stats = kind[5] = [0, 0.0, 0.0, 0.0, kind, "(beyond the per-task limit)",
                                   meta.kind, self]
        try:
            setattr(task, EXACT_ATTR, stats)
        except (AttributeError, TypeError):
            pass
        return stats

    def _run_once_timed(self) -> None:
        """`BaseEventLoop._run_once` of CPython 3.11.7, with each handle timed inline. Marks
        stamp new run-queue entries (count, time) in order, so a handle's wake-up time is
        known when it is popped without touching each handle twice."""
        loop: Any = self.loop
        clock = time.perf_counter
        if clock() >= self.deadline:
            self.stop()
        ready = loop._ready
        marks = self._marks
        known = self._known
        # --- unchanged stdlib logic: purge cancelled timers, compute the timeout -------------
        sched_count = len(loop._scheduled)
        base = asyncio.base_events
        if (sched_count > base._MIN_SCHEDULED_TIMER_HANDLES and
                loop._timer_cancelled_count / sched_count >
                base._MIN_CANCELLED_TIMER_HANDLES_FRACTION):
            new_scheduled = []
            for handle in loop._scheduled:
                if handle._cancelled:
                    handle._scheduled = False
                else:
                    new_scheduled.append(handle)
            heapq.heapify(new_scheduled)
            loop._scheduled = new_scheduled
            loop._timer_cancelled_count = 0
        else:
            while loop._scheduled and loop._scheduled[0]._cancelled:
                loop._timer_cancelled_count -= 1
                handle = heapq.heappop(loop._scheduled)
                handle._scheduled = False
        timeout = None
        if ready or loop._stopping:
            timeout = 0
        elif loop._scheduled:
            when = loop._scheduled[0]._when
            timeout = min(max(0, when - loop.time()), base.MAXIMUM_SELECT_TIMEOUT)
        if len(ready) > known:  # queued by other threads while we were away
            marks.append([len(ready) - known, clock()])
            known = len(ready)
        event_list = loop._selector.select(timeout)
        loop._process_events(event_list)
        event_list = None
        end_time = loop.time() + loop._clock_resolution
        while loop._scheduled:
            handle = loop._scheduled[0]
            if handle._when >= end_time:
                break
            handle = heapq.heappop(loop._scheduled)
            handle._scheduled = False
            ready.append(handle)
        t1 = clock()
        if len(ready) > known:
            marks.append([len(ready) - known, t1])
            known = len(ready)
        # --- the timed part ------------------------------------------------------------------
        tasks = self.tasks
        bucket = bisect.bisect_right
        edges = _EDGES
        debug = loop._debug
        ntodo = len(ready)
        for _i in range(ntodo):
            handle = ready.popleft()
            head = marks[0]
            enqueued = head[1]
            if head[0] == 1:
                marks.popleft()
            else:
                head[0] -= 1
            known -= 1
            if handle._cancelled:
                continue
            t0 = clock()
            if debug:
                try:
                    loop._current_handle = handle
                    start = loop.time()
                    handle._run()
                    dt = loop.time() - start
                    if dt >= loop.slow_callback_duration:
                        base.logger.warning("Executing %s took %.3f seconds",
                                            base._format_handle(handle), dt)
                finally:
                    loop._current_handle = None
            else:
                handle._run()
            t1 = clock()
            if len(ready) > known:
                marks.append([len(ready) - known, t1])
                known = len(ready)
            owner = getattr(handle._callback, "__self__", None)
            busy = t1 - t0
            stats = getattr(owner, EXACT_ATTR, None) if owner is not None else None
            if stats is None or stats[7] is not self:  # first step of this task here
                meta = getattr(owner, META_ATTR, None)
                if meta is None:
                    self.callback_steps += 1
                    self.callback_busy += busy
                    continue
                stats = tasks.get(meta.seq) or self._stats_for(meta, owner)
            delay = t0 - enqueued
            stats[0] += 1
            stats[1] += busy
            stats[2] += delay
            if delay > stats[3]:
                stats[3] = delay
            kind = stats[4]  # per-kind sums are added up from the tasks at report time
            kind[3][bucket(edges, busy)] += 1  # one C call: the bucket's index
            kind[4][bucket(edges, delay)] += 1
        handle = None  # as in the stdlib: break cycles when an exception occurs
        self._known = known

    def report(self, max_tasks: int = 1000) -> dict[str, Any]:
        """Plain data (JSON-ready): per task (busiest first) and per kind, with histograms as
        [[upper bound seconds, count], ...] (non-cumulative, empty buckets left out)."""
        end = self.ended if self.ended is not None else time.perf_counter()
        bounds = _bucket_bounds()
        rows = sorted(list(self.tasks.items()), key=lambda kv: -kv[1][1])[:max_tasks]
        sums: dict[str, list[float]] = {}
        every = list(self.tasks.values()) + [k[5] for k in list(self.kinds.values()) if k[5]]
        for st in every:
            acc = sums.setdefault(st[6], [0, 0.0, 0.0])
            acc[0] += st[0]
            acc[1] += st[1]
            acc[2] += st[2]
        kinds = {}
        for kind, (_s, _b, _d, bh, dh, _overflow) in list(self.kinds.items()):
            steps, busy, delay = sums.get(kind, [0, 0.0, 0.0])
            kinds[kind] = {
                "steps": int(steps), "busy_seconds": busy, "delay_seconds_total": delay,
                "busy_histogram": [[bounds[i], n] for i, n in enumerate(list(bh)) if n],
                "delay_histogram": [[bounds[i], n] for i, n in enumerate(list(dh)) if n]}
        return {
            "started": self.started_wall, "seconds": self.seconds,
            "elapsed": end - self.started, "running": self.running,
            "tasks": [{"id": seq, "name": s[5], "kind": s[6], "steps": s[0], "busy_seconds": s[1],
                       "delay_seconds_total": s[2], "delay_max_seconds": s[3]}
                      for seq, s in rows],
            "kinds": kinds,
            "callbacks": {"steps": self.callback_steps, "busy_seconds": self.callback_busy},
        }
