"""Exact accounting, on demand and bounded in time: every step (poll) of every task timed, with
its scheduling delay (made ready -> run) and log2 histograms per kind.

It runs a copy of `BaseEventLoop._run_once` (dispatched from the loop's class, only when a
self-check found the copy behaves like this Python's own: agent/exact_selfcheck.py) whose
handle loop times each handle. Two implementations of that handle loop, same results:

- `c`: `introspect.agent._exact_accel.Recorder.run`, built from `_exact_accel.c` at install
  time when a C compiler is there: no Python operation per handle, ~0.9x of plain on workload A;
- `python`: the same loop inline in Python (~0.7x), used when the accelerator is not built.

A task's slot (C) or stats list (Python) is cached on the task itself, so a step costs one
attribute lookup after the task's first step in the session. Run-queue "marks" stamp new
entries (count, time) in order, so a handle's wake-up time is known when it is popped without
touching each handle twice.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import heapq
import time
from typing import TYPE_CHECKING, Any

from introspect.protocol.messages import (
    ExactCallbacks,
    ExactKindStats,
    ExactSessionReport,
    ExactTaskStats,
)

if TYPE_CHECKING:
    from introspect.agent.core import Agent

from introspect.agent.collectors.tasks import meta_of
from introspect.textsafe import escape_for_log

try:
    from introspect.agent import _exact_accel
except ImportError:  # not built (no C compiler at install time): the Python loop is used
    _exact_accel = None  # type: ignore[assignment]

MAX_TASKS = 100_000  # per-task entries kept; beyond that only kinds are accounted
MAX_SECONDS = 600.0
HIST_BUCKETS = 32  # log2 buckets of microseconds: bucket b holds [2**(b-1), 2**b) us
PY_ATTR = "_introspect_exact"  # the Python loop's per-task stats list
C_ATTR = "_introspect_exact_slot"  # the accelerator's (session token, slot)
ACCELERATED = _exact_accel is not None

_ACTIVE: dict[int, ExactSession] = {}  # id(loop) -> its running exact session

# bisect_right(_EDGES, seconds) == min(int(seconds * 1e6).bit_length(), HIST_BUCKETS - 1)
_EDGES = [2.0 ** k / 1e6 for k in range(HIST_BUCKETS - 1)]


def exact_available(loop: asyncio.AbstractEventLoop | None) -> tuple[bool, str]:
    if loop is None:
        return False, "no event loop observed yet"
    base = asyncio.base_events.BaseEventLoop
    if not isinstance(loop, base) or getattr(type(loop), "_run_once", None) not in (
            base._run_once, _dispatch_run_once):
        return False, f"{type(loop).__module__}.{type(loop).__qualname__} runs its own loop " \
            "iteration (uvloop?): only sampling and lag-based blocking detection apply"
    # Decided from behaviour, once per process (introspect/agent/exact_selfcheck.py).
    from introspect.agent.exact_selfcheck import loop_iteration_verdict
    return loop_iteration_verdict()


def _name_of(task: Any) -> str:
    try:
        return str(task.get_name())
    except Exception:  # a task class of the app's own with a broken get_name
        return "?"


def bucket_bounds() -> list[float]:
    return [2.0 ** b / 1e6 for b in range(HIST_BUCKETS)]


def _dispatch_run_once(loop: Any) -> None:
    session = _ACTIVE.get(id(loop))
    if session is None or session.loop is not loop:
        return asyncio.base_events.BaseEventLoop._run_once(loop)
    return session._run_once()


def _prepare(loop: Any, mark: Any) -> None:
    """`BaseEventLoop._run_once` of CPython 3.11.7 (3.12 to 3.14 behave the same: see
    exact_selfcheck.py) up to the handle loop, unchanged but for `mark()` calls: before select
    (entries queued by other threads meanwhile) and after due timers joined the run queue."""
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
    ready = loop._ready
    if ready or loop._stopping:
        timeout = 0
    elif loop._scheduled:
        when = loop._scheduled[0]._when
        timeout = min(max(0, when - loop.time()), base.MAXIMUM_SELECT_TIMEOUT)
    mark(len(ready))
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
    mark(len(ready))


class ExactSession:
    """Per-task steps, busy time and scheduling delay, for a bounded time. `report()` can be
    read from any thread, during or after the session."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float,
                 accelerated: bool | None = None) -> None:
        self.loop = loop
        self.seconds = seconds
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.deadline = self.started + seconds
        self.ended: float | None = None
        self.accelerated = ACCELERATED if accelerated is None else accelerated and ACCELERATED
        self.callback_steps = 0
        self.callback_busy = 0.0
        # Python loop: seq -> [steps, busy, delay_sum, delay_max, kind_stats, name, kind, self]
        self.tasks: dict[int, list[Any]] = {}
        # Python loop: kind -> [_, _, _, busy_hist, delay_hist, overflow stats]
        self.kinds: dict[str, list[Any]] = {}
        self._marks: collections.deque[list[Any]] = collections.deque()
        self._known = 0  # run-queue entries covered by marks
        # accelerator: slot -> (seq or None, name, kind); kind name -> index
        self._slots: list[tuple[int | None, str, str]] = []
        self._slot_of_seq: dict[int, int] = {}
        self._kind_index: dict[str, int] = {}
        self._overflow: dict[str, int] = {}
        self._recorder: Any = None
        self._final: dict[int, ExactSessionReport] = {}  # max_tasks -> report once finished
        if self.accelerated:
            task_types = tuple({asyncio.Task, asyncio.tasks._PyTask})
            handle_types = (asyncio.Handle, asyncio.TimerHandle)
            self._recorder = _exact_accel.Recorder(self._first_seen, task_types, handle_types,
                                                   C_ATTR, HIST_BUCKETS)

    @property
    def implementation(self) -> str:
        return "c" if self.accelerated else "python"

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
            self.ended = min(time.perf_counter(), self.deadline)
        if _ACTIVE.get(id(self.loop)) is self:
            del _ACTIVE[id(self.loop)]
        cls = type(self.loop)
        still_used = any(type(s.loop) is cls for s in list(_ACTIVE.values()))
        if not still_used and cls.__dict__.get("_run_once") is _dispatch_run_once:
            with contextlib.suppress(AttributeError, TypeError):
                del cls._run_once

    @property
    def running(self) -> bool:
        """False once stopped or past the deadline: an idle loop may only come round to
        switching itself back to the stdlib's iteration a little later."""
        return self.ended is None and time.perf_counter() < self.deadline

    def _run_once(self) -> None:
        if time.perf_counter() >= self.deadline:
            self.stop()  # past the deadline: nothing more is counted, this iteration included
            return asyncio.base_events.BaseEventLoop._run_once(self.loop)
        if self.accelerated:
            self._run_once_c()
        else:
            self._run_once_py()

    # --- the accelerator -----------------------------------------------------------------------
    def _first_seen(self, task: Any) -> tuple[int, int] | None:
        """Called by the accelerator at a task's first step in this session: its slot and
        kind index (None: not a task the agent knows, counted with plain callbacks)."""
        meta = meta_of(task)
        if meta is None:
            return None
        kind = self._kind_index.get(meta.kind)
        if kind is None:
            kind = self._kind_index[meta.kind] = len(self._kind_index)
        slot = self._slot_of_seq.get(meta.seq)
        if slot is None:
            if len(self._slot_of_seq) < MAX_TASKS:
                name = _name_of(task)
                slot = self._slot_of_seq[meta.seq] = len(self._slots)
                self._slots.append((meta.seq, name, meta.kind))
            else:
                slot = self._overflow.get(meta.kind)
                if slot is None:
                    slot = self._overflow[meta.kind] = len(self._slots)
                    self._slots.append((None, "(beyond the per-task limit)", meta.kind))
        return slot, kind

    def _run_once_c(self) -> None:
        loop: Any = self.loop
        recorder = self._recorder
        _prepare(loop, recorder.mark)
        ready = loop._ready
        if loop._debug:
            recorder.run(ready, len(ready), self._debug_run)
        else:
            recorder.run(ready, len(ready))

    def _debug_run(self, handle: Any) -> None:
        """The stdlib loop's debug-mode branch around one handle."""
        loop: Any = self.loop
        try:
            loop._current_handle = handle
            t0 = loop.time()
            handle._run()
            dt = loop.time() - t0
            if dt >= loop.slow_callback_duration:
                base = asyncio.base_events
                base.logger.warning("Executing %s took %.3f seconds",  # names escaped
                                    escape_for_log(base._format_handle(handle)), dt)
        finally:
            loop._current_handle = None

    # --- the Python loop -----------------------------------------------------------------------
    def _mark_py(self, len_ready: int) -> None:
        if len_ready < self._known:  # someone emptied the run queue behind our back
            self._marks.clear()
            self._known = 0
        if len_ready > self._known:
            self._marks.append([len_ready - self._known, time.perf_counter()])
            self._known = len_ready

    def _stats_for(self, meta: Any, task: Any) -> list[Any]:
        """The task's stats list, cached on the task itself (one attribute lookup per step
        after this); beyond MAX_TASKS tasks share one list per kind."""
        kind = self.kinds.get(meta.kind)
        if kind is None:
            kind = self.kinds[meta.kind] = [0, 0.0, 0.0, [0] * HIST_BUCKETS,
                                            [0] * HIST_BUCKETS, None]
        if len(self.tasks) < MAX_TASKS:
            stats = [0, 0.0, 0.0, 0.0, kind, _name_of(task), meta.kind, self]
            self.tasks[meta.seq] = stats
        else:
            stats = kind[5]
            if stats is None:
                stats = kind[5] = [0, 0.0, 0.0, 0.0, kind, "(beyond the per-task limit)",
                                   meta.kind, self]
        try:
            setattr(task, PY_ATTR, stats)
        except (AttributeError, TypeError):
            pass
        return stats

    def _run_once_py(self) -> None:
        loop: Any = self.loop
        clock = time.perf_counter
        _prepare(loop, self._mark_py)
        ready = loop._ready
        marks = self._marks
        known = self._known
        tasks = self.tasks
        bucket = bisect.bisect_right
        edges = _EDGES
        debug = loop._debug
        ntodo = len(ready)
        for _i in range(ntodo):
            handle = ready.popleft()
            enqueued = None
            if marks:
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
                self._debug_run(handle)
            else:
                handle._run()
            t1 = clock()
            if len(ready) > known:
                marks.append([len(ready) - known, t1])
                known = len(ready)
            owner = getattr(handle._callback, "__self__", None)
            busy = t1 - t0
            stats = getattr(owner, PY_ATTR, None) if owner is not None else None
            if stats is None or stats[7] is not self:  # first step of this task here
                meta = meta_of(owner)
                if meta is None:
                    self.callback_steps += 1
                    self.callback_busy += busy
                    continue
                stats = tasks.get(meta.seq) or self._stats_for(meta, owner)
            delay = t0 - enqueued if enqueued is not None else 0.0
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

    # --- the report ----------------------------------------------------------------------------
    def _rows(self) -> tuple[list[tuple[int | None, str, str, int, float, float, float]],
                             dict[str, tuple[list[int], list[int]]], int, float]:
        """(seq, name, kind, steps, busy, delay_sum, delay_max) per task (overflow rows have
        seq None), histograms per kind, callback steps and busy time."""
        if self.accelerated:
            slots = list(self._slots)
            names = list(self._kind_index.items())
            rows, hists, cb_steps, cb_busy = self._recorder.stats(len(slots), len(names))
            out = [(seq, name, kind, *row) for (seq, name, kind), row in
                   zip(slots, rows, strict=False)]
            kinds = {name: hists[i] for name, i in names if i < len(hists)}
            return out, kinds, cb_steps, cb_busy
        every = list(self.tasks.items()) + [(None, k[5]) for k in list(self.kinds.values())
                                            if k[5]]
        out = [(seq, s[5], s[6], s[0], s[1], s[2], s[3]) for seq, s in every]
        kinds = {name: (list(k[3]), list(k[4])) for name, k in list(self.kinds.items())}
        return out, kinds, self.callback_steps, self.callback_busy

    def report(self, max_tasks: int = 1000) -> ExactSessionReport:
        """Per task (busiest first, at most `max_tasks`) and per kind, with histograms as
        [[upper bound seconds, count], ...] (non-cumulative, empty buckets left out).
        Once the session is over, the first report read is the final one: an iteration that
        began before the deadline may still be finishing, and a finished report that changes
        afterwards (30.0 s -> 30.4 s, 4 -> 5 steps) reads as a bug."""
        if not self.running:
            final = self._final.get(max_tasks)
            if final is None:
                final = self._final[max_tasks] = self._report(max_tasks)
            return final
        return self._report(max_tasks)

    def _report(self, max_tasks: int) -> ExactSessionReport:
        end = self.ended if self.ended is not None else min(time.perf_counter(),
                                                             self.deadline)
        bounds = bucket_bounds()
        rows, hists, cb_steps, cb_busy = self._rows()
        sums: dict[str, list[float]] = {}
        for _seq, _name, kind, steps, busy, delay, _dmax in rows:
            acc = sums.setdefault(kind, [0, 0.0, 0.0])
            acc[0] += steps
            acc[1] += busy
            acc[2] += delay
        kinds = {}
        for kind, (bh, dh) in hists.items():
            steps, busy, delay = sums.get(kind, [0, 0.0, 0.0])
            kinds[kind] = ExactKindStats(
                steps=int(steps), busy_seconds=busy, delay_seconds_total=delay,
                busy_histogram=[(bounds[i], n) for i, n in enumerate(bh) if n],
                delay_histogram=[(bounds[i], n) for i, n in enumerate(dh) if n])
        per_task = sorted((r for r in rows if r[0] is not None), key=lambda r: -r[4])
        return ExactSessionReport(
            started=self.started_wall, seconds=self.seconds, elapsed=end - self.started,
            running=self.running, implementation="c" if self.accelerated else "python",
            tasks=[ExactTaskStats(id=seq, name=name, kind=kind, steps=int(steps),
                                  busy_seconds=busy, delay_seconds_total=delay,
                                  delay_max_seconds=dmax)
                   for seq, name, kind, steps, busy, delay, dmax in per_task[:max_tasks]],
            kinds=kinds,
            callbacks=ExactCallbacks(steps=int(cb_steps), busy_seconds=cb_busy))


class ExactMode:
    """`agent.exact`: starts exact sessions on the observed loop and keeps the latest one for
    its report. Independent of the busy-time sampler (SIGPROF may be off or taken)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.session: ExactSession | None = None

    def start(self, seconds: float) -> ExactSession:
        """Start exact accounting for `seconds` (at most 600), replacing any session still
        running; its `report()` can be read any time, during or after. RuntimeError if the
        observed loop can't do it (no loop, uvloop, a loop class with its own `_run_once`)."""
        loop = self.agent.loop
        ok, why = exact_available(loop)
        if not ok or loop is None:
            raise RuntimeError(f"exact accounting unavailable: {why}")
        seconds = max(0.0, min(float(seconds), MAX_SECONDS))
        if self.session is not None:
            self.session.stop()
        self.session = ExactSession(loop, seconds).start()
        return self.session

    def report(self, max_tasks: int = 1000) -> ExactSessionReport | None:
        """The latest session's report; None when none was started."""
        session = self.session
        return session.report(max_tasks) if session is not None else None

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()

    @staticmethod
    def limitations(loop: asyncio.AbstractEventLoop) -> list[str]:
        """What exact accounting can't do (or does slowly) for `loop`."""
        ok, why = exact_available(loop)
        if not ok:
            return [f"exact accounting: {why}"]
        if not ACCELERATED:
            return ["exact accounting: the C accelerator is not built (no compiler at install "
                    "time?), the pure-Python loop costs ~0.7x of plain instead of ~0.97x"]
        return []
