"""When the agent switches loops (`Agent.attach_loop`: detach from L1, attach L2), what the
lag probe left queued or armed on L1 does nothing once L1 runs again: no second timer chain on
L2, no timer armed on L2 from L1's thread (`call_at` is not thread-safe), no beat counted twice,
the probe's loop thread stays L2's. And `detach` leaves no live probe timer on a loop at rest.

The last test is the agent's own switch, in a program: a loop made at import time (attached
while at rest), then `asyncio.run()` (observed from then on), then the first loop run by a
background thread. Real loops in real threads; the ground truth is each loop's timer heap
(`_scheduled`, read on the loop's own thread or while it is at rest) and the thread and time
of every beat. Run on asyncio's loop and on uvloop (no `_scheduled` there: the beats tell).
Crossversion."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from introspect.agent.collectors.loop import LoopCollector
from tests.support.procs import wait_until

pytestmark = pytest.mark.crossversion  # (tests/conftest.py registers the marker)

INTERVAL = 0.02
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class LoopThread:
    """Runs `loop.run_forever()` in a thread of its own until `stop()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=loop.run_forever, daemon=True)
        self.thread.start()
        self.ident = self.thread.ident
        wait_until(loop.is_running, timeout=10, interval=0.005, message="the loop runs")

    def call(self, fn: Callable[[], Any]) -> Any:
        """`fn()` on the loop's thread, after everything queued on the loop before it."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(lambda: future.set_result(fn()))
        return future.result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()


def probe_timers(loop: asyncio.AbstractEventLoop, probe: LoopCollector) -> int:
    """Live (not cancelled) probe timers in asyncio's timer heap."""
    return sum(1 for handle in loop._scheduled  # type: ignore[attr-defined]
               if not handle.cancelled() and getattr(handle._callback, "__self__", None)
               is probe)


def beating_probe() -> tuple[LoopCollector, list[tuple[int, float]]]:
    probe = LoopCollector(INTERVAL)
    beats: list[tuple[int, float]] = []  # (thread, monotonic) of each beat
    probe.on_beat.append(lambda: beats.append((threading.get_ident(), time.monotonic())))
    return probe, beats


def wait_for_beats(probe: LoopCollector, more: int) -> None:
    target = probe.beats + more
    wait_until(lambda: probe.beats >= target, timeout=20, interval=0.01,
               message=f"{more} more beats")


def assert_one_chain(beats: list[tuple[int, float]], thread: int | None) -> None:
    """Every beat on `thread`, never two within one interval: a second timer chain, whatever
    its phase, puts some pair of beats less than half an interval apart."""
    assert {ident for ident, _ in beats} == {thread}
    times = [when for _, when in beats]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 10
    assert min(gaps) >= 0.75 * INTERVAL, gaps


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_a_start_left_queued_on_the_old_loop_does_nothing(kind: str) -> None:
    probe, beats = beating_probe()
    old, new = LOOPS[kind](), LOOPS[kind]()
    errors: list[dict[str, Any]] = []
    for loop in (old, new):
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
    runner_old = None
    runner_new = LoopThread(new)
    try:
        probe.attach(old)  # at rest: its `_start` waits in the old loop's queue
        probe.detach()  # the switch, as Agent.attach_loop makes it
        probe.attach(new)
        wait_for_beats(probe, 3)
        runner_old = LoopThread(old)
        runner_old.call(lambda: None)  # the old loop has run what was queued on it
        del beats[:]
        wait_for_beats(probe, 12)
        if kind == "asyncio":
            assert runner_new.call(lambda: probe_timers(new, probe)) == 1
            assert runner_old.call(lambda: probe_timers(old, probe)) == 0
        assert probe.thread_id == runner_new.ident  # the watchdog reads this thread's stack
        beats_seen = list(beats)
    finally:
        probe.detach()
        for runner in (runner_old, runner_new):
            if runner is not None:
                runner.stop()
        old.close()
        new.close()
    assert_one_chain(beats_seen, runner_new.ident)
    assert errors == []


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_a_timer_armed_on_the_old_loop_is_cancelled_at_detach(kind: str) -> None:
    probe, beats = beating_probe()
    old, new = LOOPS[kind](), LOOPS[kind]()
    runner_new = None
    runner_old = LoopThread(old)
    try:
        probe.attach(old)
        wait_for_beats(probe, 2)
        runner_old.stop()  # at rest, the probe's next timer armed on it
        if kind == "asyncio":
            assert probe_timers(old, probe) == 1
        probe.detach()
        if kind == "asyncio":
            assert probe_timers(old, probe) == 0  # cancelled now, not when the loop runs again
        runner_new = LoopThread(new)
        probe.attach(new)
        wait_for_beats(probe, 2)
        runner_old = LoopThread(old)  # runs past the old timer's due time
        time_due = time.monotonic() + 2 * INTERVAL
        wait_until(lambda: runner_old.call(time.monotonic) > time_due, timeout=10,
                   interval=0.01, message="the old loop past the old timer's due time")
        del beats[:]
        wait_for_beats(probe, 12)
        if kind == "asyncio":
            assert runner_new.call(lambda: probe_timers(new, probe)) == 1
            assert runner_old.call(lambda: probe_timers(old, probe)) == 0
        beats_seen = list(beats)
    finally:
        probe.detach()
        for runner in (runner_old, runner_new):
            if runner is not None and runner.thread.is_alive():
                runner.stop()
        old.close()
        new.close()
    assert_one_chain(beats_seen, runner_new.ident)


SWITCHING_PROGRAM = textwrap.dedent("""
    import asyncio, threading, time
    import introspect

    introspect.start()
    background = asyncio.new_event_loop()  # observed, at rest: the probe's start queued on it

    async def main():
        agent = introspect.get_agent()
        loop = asyncio.get_running_loop()
        probe = agent.loop_probe
        assert agent.loop is loop  # asyncio.run's loop replaced the one at rest
        thread = threading.Thread(target=background.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), background).result(10)
        beats = probe.beats  # the background loop has run what was queued on it
        deadline = time.monotonic() + 30
        while probe.beats < beats + 10:
            assert time.monotonic() < deadline, "no beats"
            await asyncio.sleep(0.01)
        timers = [h for h in loop._scheduled
                  if not h.cancelled() and getattr(h._callback, "__self__", None) is probe]
        elsewhere = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, [
            h for h in background._scheduled
            if not h.cancelled() and getattr(h._callback, "__self__", None) is probe]),
            background).result(10)
        print("timers", len(timers), len(elsewhere))
        print("thread", probe.thread_id == threading.get_ident())
        background.call_soon_threadsafe(background.stop)
        thread.join(10)

    asyncio.run(main())
""")


def test_the_agent_switching_loops_keeps_one_probe_on_the_observed_loop() -> None:
    out = subprocess.run([sys.executable, "-c", SWITCHING_PROGRAM], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "timers 1 0" in out.stdout, out.stdout  # one timer chain, on the observed loop
    assert "thread True" in out.stdout, out.stdout  # blocks are read from the right thread
