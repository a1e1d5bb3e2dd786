"""Whether exact accounting's copy of `BaseEventLoop._run_once` behaves like this Python's own,
decided from behaviour: a tiny scripted loop is driven once by the stdlib's iteration and once
by each of ours (Python and C handle loops) and what they did is compared — which callback ran
in which iteration, every select timeout, the timer heap's size and cancelled count, and the
steps each task made (against the count the tasks kept themselves).

The loop runs on a fake clock that only moves inside `select` (by the timeout asked), so both
runs are the same sequence of events to the last timer, on a loaded machine too.

Source-level reading of `_run_once` (asyncio/base_events.py) per supported version:
- 3.11.7: the version exact.py's `_prepare` was copied from.
- 3.12.1: identical to 3.11.7.
- 3.13.5 and 3.14.10: identical to each other; against 3.11 only the select timeout is
  computed differently (`if > MAX / elif < 0` instead of `min(max(0, ...), MAX)`: same values).
"""

from __future__ import annotations

import asyncio
import selectors
import threading
from typing import Any

ITERATIONS = 3  # rounds of each kind of work in the scenario
_verdict: tuple[bool, str] | None = None
_lock = threading.Lock()


class _RecordingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, trace: list[Any], clock: list[float]) -> None:
        super().__init__()
        self.trace = trace
        self.clock = clock

    def select(self, timeout: float | None = None) -> Any:
        loop_state = self.trace_state()
        self.trace.append(("select", None if timeout is None else round(timeout, 9),
                           *loop_state))
        if timeout:
            self.clock[0] += timeout
        return super().select(0)

    def trace_state(self) -> tuple[int, int, int]:
        loop = self.loop
        return len(loop._ready), len(loop._scheduled), loop._timer_cancelled_count


class _CheckLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """A loop of our own (never the app's): its own class, so the exact dispatch installed on
    it touches no other loop."""

    def __init__(self, trace: list[Any]) -> None:
        self.clock = [1000.0]
        selector = _RecordingSelector(trace, self.clock)
        super().__init__(selector)
        selector.loop = self  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.clock[0]


async def _scenario(loop: Any, trace: list[Any], steps: dict[int, int]) -> None:
    from introspect.agent.collectors.tasks import new_meta

    def note(name: str) -> None:
        trace.append(("run", name))

    async def worker(seq: int, rounds: int, nap: float) -> None:
        steps[seq] = 1
        note(f"worker{seq} step 1")
        for _ in range(rounds):
            await asyncio.sleep(0)
            steps[seq] += 1
            note(f"worker{seq} step {steps[seq]}")
            await asyncio.sleep(nap)
            steps[seq] += 1
            note(f"worker{seq} step {steps[seq]}")

    tasks = []
    metas = []  # a TaskMeta lives as long as it is held
    for seq, nap in ((1, 0.0), (2, 0.004), (3, 0.01)):
        task = loop.create_task(worker(seq, ITERATIONS, nap))
        metas.append(new_meta(task, seq, f"selfcheck.worker{seq}", 0.0, None))
        tasks.append(task)
    for i in range(ITERATIONS):
        loop.call_soon(note, f"soon{i}")
        loop.call_later(0.002 * (i + 1), note, f"later{i}")
        loop.call_later(0.003, note, "cancelled").cancel()
        loop.call_soon_threadsafe(note, f"threadsafe{i}")
    # More than 100 timers, most cancelled: the heap's clean-up branch.
    far = [loop.call_later(500.0 + i, note, "far") for i in range(150)]
    for handle in far[:120]:
        handle.cancel()
    fut = loop.create_future()
    loop.call_later(0.007, fut.set_result, None)
    await fut
    await asyncio.gather(*tasks)
    for handle in far:
        handle.cancel()


def _drive(implementation: str | None) -> tuple[list[Any], dict[int, int], dict[int, int]]:
    """(trace, steps the tasks counted, steps exact accounting saw) for one run."""
    from introspect.agent.exact import ExactSession

    trace: list[Any] = []
    steps: dict[int, int] = {}
    loop = _CheckLoop(trace)
    session = None
    try:
        if implementation is not None:
            session = ExactSession(loop, 600.0, accelerated=implementation == "c").start()
        loop.run_until_complete(_scenario(loop, trace, steps))
    finally:
        if session is not None:
            session.stop()
        loop.close()
    seen = {row.id: row.steps for row in session.report().tasks} if session else {}
    return trace, steps, seen


def _compare() -> tuple[bool, str]:
    from introspect.agent.exact import ACCELERATED

    reference, _, _ = _drive(None)
    for implementation in ("c", "python") if ACCELERATED else ("python",):
        trace, counted, seen = _drive(implementation)
        if trace != reference:
            first = next((i for i, (a, b) in enumerate(zip(trace, reference, strict=False))
                          if a != b), min(len(trace), len(reference)))
            return False, f"this Python's asyncio loop iteration behaves differently from " \
                f"exact mode's copy (self-check, {implementation} loop, event {first})"
        if counted != seen:
            return False, f"exact mode's {implementation} loop miscounted task steps in its " \
                f"self-check ({seen} seen, {counted} made)"
    return True, "available"


def loop_iteration_verdict() -> tuple[bool, str]:
    """(ok, reason), computed once per process on a short-lived thread of its own (a loop
    can't run on a thread that is already running one)."""
    global _verdict
    with _lock:
        if _verdict is None:
            result: list[tuple[bool, str]] = []

            def run() -> None:
                try:
                    result.append(_compare())
                except Exception as exc:  # the check itself broke: that is a no
                    result.append((False, f"exact mode's self-check failed: "
                                          f"{type(exc).__name__}: {exc}"))

            thread = threading.Thread(target=run, name="introspect-exact-selfcheck",
                                      daemon=True)
            thread.start()
            thread.join(10.0)
            _verdict = result[0] if result else (False, "exact mode's self-check timed out")
        return _verdict
