"""Busy time per task and per kind (observer's reductions, tokio-console's busy/polls).

Always on, statistical: `ITIMER_PROF` fires ~100 times per CPU-second and a tiny `SIGPROF`
handler (on the main thread, between bytecodes) adds the main thread's CPU time since the
previous tick to the task running right now (`asyncio_facts.running_task`). Measured cost on
workload A: within noise of plain (benchmarks/results/detectors.md). Only for a loop on the
main thread; if the app or a profiler already uses SIGPROF/ITIMER_PROF we leave it alone.
The timer is cancelled at agent stop, at exit and before `os.exec*` (a late SIGPROF with the
default action kills the process: "Profiling timer expired").

Exact accounting (every step timed, on demand) is apart: `introspect.agent.exact`.
"""

from __future__ import annotations

import _signal
import atexit
import heapq
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from introspect.agent.asyncio_facts import running_task
from introspect.agent.collectors.tasks import meta_of

if TYPE_CHECKING:
    from introspect.agent.core import Agent

SAMPLE_INTERVAL = 0.01  # CPU seconds between samples
MAX_TASKS = 100_000  # per-task entries kept; beyond that only kinds are accounted
PRUNE_EVERY = 10.0  # seconds between removals of finished tasks from the per-task map


class BusySampler:
    """`agent.sampler`: `busy_by_kind()`, `task_busy()`; `active` and, when not, `reason`."""

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
        self._by_task = TaskSeconds(lambda: agent.tasks.registry)
        self._last_cpu = 0.0
        self._gap = interval  # process CPU the timer waits before the next tick
        self._next_prune = 0.0
        self._saved_exec: dict[str, Any] = {}
        self._atexit_registered = False
        self._stopped = False
        # The handler installed, one bound-method object: the beat checks it is still the
        # process's by identity, on `_signal.getsignal`'s raw answer (`signal.getsignal`
        # converts to an enum through a raised ValueError: ~5 us, 10 times a second).
        self._handler = self._on_sigprof
        agent.loop_probe.on_beat.append(self._on_beat)

    # --- the signal handler: keep it tiny --------------------------------------------------
    def _on_sigprof(self, signum: int, frame: Any) -> None:
        try:
            if not self.active:
                return  # a tick already on its way when the timer was cancelled: no re-arming
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
            task = running_task(self.agent.loop)
            meta = meta_of(task)
            if meta is None:
                self.unattributed_seconds += delta
                return
            kind = meta.kind
            self._by_kind[kind] = self._by_kind.get(kind, 0.0) + delta
            self._by_task.add(meta.seq, delta)
        except Exception:
            pass  # never raise into whatever task the signal interrupted

    # --- arming (on the loop thread, from the lag probe's beat) ----------------------------
    def _on_beat(self) -> None:
        if self.active:
            now = time.monotonic()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                self._prune()
            if _signal.getsignal(signal.SIGPROF) is not self._handler:
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
        ours = handler == self._on_sigprof  # a forked child re-arming its parent's handler
        if (handler not in (signal.SIG_DFL, None) and not ours) or \
                signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0):
            self.reason = "SIGPROF / ITIMER_PROF already in use (another profiler?)"
            return
        signal.signal(signal.SIGPROF, self._handler)
        signal.siginterrupt(signal.SIGPROF, False)  # restart syscalls, never EINTR the app
        self._last_cpu = time.thread_time()
        self._wrap_exec()
        if not self._atexit_registered:
            atexit.register(self._cancel_at_exit)
            self._atexit_registered = True
        self.active = True  # before the first tick, which would otherwise return at once
        self.reason = "sampling"
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def _cancel_timer(self, at_exit: bool = False) -> None:
        """Stop the timer and drop a SIGPROF already on its way: once the handler is back to
        the default, a late one would kill the process ("Profiling timer expired"), and
        pending signals even survive exec. Setting SIG_IGN discards pending ones (POSIX). At
        exit it stays ignored: seen under valgrind, whose queued signals arrive late.

        The handler re-arms the timer at every tick, and Python runs it between any two
        bytecodes of the main thread, this method's too: `active` goes False first, so a
        tick that lands while we cancel cannot re-arm a timer whose handler is then the
        default (which would kill the host: "Profiling timer expired")."""
        self.active = False
        if signal.getsignal(signal.SIGPROF) == self._on_sigprof:
            on_main = threading.current_thread() is threading.main_thread()
            if on_main:
                signal.signal(signal.SIGPROF, signal.SIG_IGN)
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            if on_main and not at_exit:
                signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def _cancel_at_exit(self) -> None:
        self._cancel_timer(at_exit=True)

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
        self._by_task.prune()

    # --- lifecycle ---------------------------------------------------------------------------
    def after_fork_in_child(self) -> None:
        """Interval timers are not inherited by fork(2): a forked worker re-arms at its loop's
        next beat, and its busy time starts from zero (the parent's is not the worker's)."""
        self.samples = 0
        self.unattributed_seconds = 0.0
        self._by_kind = {}
        self._by_task.clear()
        if self.active:
            self.active = False
            self.reason = "waiting for an event loop on the main thread"

    def stop(self) -> None:
        self._stopped = True
        try:
            self.agent.loop_probe.on_beat.remove(self._on_beat)
        except ValueError:
            pass
        self._cancel_timer()
        for name, original in self._saved_exec.items():
            if getattr(getattr(os, name), "_introspect_original", None) is original:
                setattr(os, name, original)
        self._saved_exec.clear()
        # The exit hook is for a handler of ours still installed (stop() off the main thread
        # cannot put the default back). Once it is gone, the hook would only keep this
        # sampler, and through it the whole agent, alive after stop().
        if self._atexit_registered and _signal.getsignal(signal.SIGPROF) is not self._handler:
            atexit.unregister(self._cancel_at_exit)
            self._atexit_registered = False

    # --- reads (any thread) ------------------------------------------------------------------
    def busy_by_kind(self) -> dict[str, float]:
        """Seconds of loop-thread CPU per task kind since start (statistical)."""
        return dict(self._by_kind)

    def task_busy(self) -> dict[int, float]:
        """Seconds per live task id (`TaskMeta.seq`), statistical; finished tasks drop out."""
        return self._by_task.seconds()

    def most_busy(self, count: int) -> list[Any]:
        """The `count` live tasks with the most CPU, most first."""
        return self._by_task.leading(count)

    def limitations(self) -> list[str]:
        """Why sampling is off, if it is, in words a user reads."""
        return [] if self.active else [f"busy-time sampling: {self.reason}"]


class HeldTime:
    """Wall time each task held the loop (`agent.blocking.held`): CPU *and* blocking calls.

    The SIGPROF sampler above counts CPU only, so a task stuck in `time.sleep` shows 0 %.
    The blocking watchdog wakes every few milliseconds anyway and knows whether the loop is
    out of `select()`; at each wake-up it hands the elapsed *off-CPU* wall time (the loop
    thread's CPU clock says how much of it was CPU) to `add()` with the task running right
    now: a wall-clock sampler, exact to one poll period for long blocking calls. The CPU
    part comes from the SIGPROF sampler (`busy`), which a thread can't measure fairly: a
    spinning loop thread holds the GIL, so the watchdog only gets to look once a step is
    over. Reads are the sum of both; without the sampler, the watchdog counts all the wall
    time itself. Fed from the watchdog thread only; read from any thread.
    """

    def __init__(self, registry_of: Callable[[], dict[int, Any]],
                 sampler_of: Any = lambda: None) -> None:
        self._sampler_of = sampler_of  # () -> BusySampler | None, for the CPU part
        self.unattributed_seconds = 0.0  # loop busy outside any task (callbacks, the loop)
        self._by_kind: dict[str, float] = {}
        self._by_task = TaskSeconds(registry_of)
        self._next_prune = 0.0

    def add(self, task: Any, seconds: float, now: float) -> None:
        meta = meta_of(task)
        if meta is None:
            self.unattributed_seconds += seconds
        else:
            self._by_kind[meta.kind] = self._by_kind.get(meta.kind, 0.0) + seconds
            self._by_task.add(meta.seq, seconds)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            self._by_task.prune()

    def held_by_kind(self) -> dict[str, float]:
        """Seconds of loop wall time per task kind since start."""
        out = dict(self._by_kind)
        sampler = self._sampler_of()
        if sampler is not None:
            for kind, seconds in sampler.busy_by_kind().items():
                out[kind] = out.get(kind, 0.0) + seconds
        return out

    def task_held(self) -> dict[int, float]:
        """Seconds per live task id (`TaskMeta.seq`); finished tasks drop out."""
        out = self._by_task.seconds()
        sampler = self._sampler_of()
        if sampler is not None:
            for seq, seconds in sampler.task_busy().items():
                out[seq] = out.get(seq, 0.0) + seconds
        return out

    def most_held(self, count: int) -> list[Any]:
        """The `count` live tasks that held the loop longest off-CPU (blocking calls),
        longest first: the CPU-heavy ones are the busy sampler's (`most_busy`)."""
        return self._by_task.leading(count)


class TaskSeconds:
    """Seconds per task, keyed by its `TaskMeta.seq`, for the tasks still alive.

    Only ints and floats: the collector untracks such a dict, so a table of ~1,000 entries
    (100 samples a second, each often a different task under churn, pruned every
    PRUNE_EVERY) adds nothing to the objects every collection walks. (A `[seconds,
    weakref]` pair per entry did: ~2,000 objects in the generations of a churning service.)
    The tasks themselves are found again through the task collector's registry of live
    tasks (seq -> TaskMeta, a weak reference)."""

    def __init__(self, registry_of: Callable[[], dict[int, Any]]) -> None:
        self._registry_of = registry_of
        self._seconds: dict[int, float] = {}

    def add(self, seq: int, seconds: float) -> None:
        table = self._seconds
        if seq in table:
            table[seq] += seconds
        elif len(table) < MAX_TASKS:
            table[seq] = seconds

    def prune(self) -> None:
        """Drop the tasks that are over (no longer in the registry)."""
        registry = self._registry_of()
        for seq in list(self._seconds):
            if seq not in registry:
                self._seconds.pop(seq, None)

    def clear(self) -> None:
        self._seconds = {}

    def seconds(self) -> dict[int, float]:
        return dict(self._seconds)

    def leading(self, count: int) -> list[Any]:
        """The live tasks with the most seconds, most first."""
        registry = self._registry_of()
        out = []  # nlargest: O(n), not a sort; finished tasks are pruned every PRUNE_EVERY
        for seq, _seconds in heapq.nlargest(count * 2, list(self._seconds.items()),
                                            key=itemgetter(1)):
            meta = registry.get(seq)
            task = meta() if meta is not None else None
            if task is not None and not task.done():
                out.append(task)
                if len(out) >= count:
                    break
        return out
