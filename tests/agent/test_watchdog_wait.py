"""The watchdog's wait (introspect/agent/watch.py, _watchdog_accel.c): looks that need no Python
are made without the GIL, and every look that does (a block beginning, held time to attribute,
duties) still reaches Python. Crossversion (tests/conftest.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time

import pytest

WATCH_STATS = r'''
import asyncio, json, time
import introspect

introspect.start()


async def main():
    watch = introspect.get_agent().blocking._watch
    stats = lambda: (watch.looks_in_c, watch.busy_looks_in_c, watch.returns)

    async def phase(name, step):
        first = stats()
        while stats()[0] - first[0] < 30:  # looks the C wait made: polled, no fixed length
            await step()
        last = stats()
        print(json.dumps({"phase": name, "looks_in_c": last[0] - first[0],
                          "busy_looks_in_c": last[1] - first[1],
                          "returns": last[2] - first[2]}), flush=True)

    async def idle():
        await asyncio.sleep(0.05)

    async def saturated():  # short CPU-bound steps, back to back: the loop never waits
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            sum(range(2000))
            await asyncio.sleep(0)

    await phase("idle", idle)
    await phase("saturated", saturated)


asyncio.run(main())
'''


def test_the_c_watchdog_is_built() -> None:
    # Without it every look takes the GIL from the loop: ~5 % of a single-worker server.
    from introspect.agent import watch

    assert watch._accel is not None


def test_looks_at_an_idle_and_a_saturated_loop_are_made_without_the_gil() -> None:
    out = subprocess.run([sys.executable, "-c", WATCH_STATS], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "INTROSPECT_HOST_LOG": "off"})
    assert out.returncode == 0, out.stderr
    phases = {p["phase"]: p for p in map(json.loads, out.stdout.splitlines())}
    idle, saturated = phases["idle"], phases["saturated"]
    # Idle: the loop waits in select(); Python runs only for the once-a-second duties
    # (30 looks at ~13 a second: ~2.3 s, so 2 or 3 duty wake-ups).
    assert idle["busy_looks_in_c"] == 0, idle
    assert idle["returns"] <= 6, idle
    # Saturated: looks that find the loop busy below the threshold with its thread on the
    # CPU are made in C too (a look that finds it off the CPU for >10 % of the gap goes to
    # Python for held time: how many do depends on the machine, so only C's share is bound).
    assert saturated["busy_looks_in_c"] >= 5, saturated


# --- the C wait on its own, with a lag-probe due time standing for the loop's state -------

def _watch(threshold: float = 10.0, poll: float = 0.02, held_share: float = 0.1):
    from introspect.agent import _watchdog_accel as c

    return c, c.Watch(poll, threshold, 0.0005, held_share, 12345)


def test_an_idle_loop_is_looked_at_in_c_until_python_is_due() -> None:
    c, watch = _watch()
    due_stamp = c.DueStamp()
    due_stamp.set(time.monotonic() + 3600)  # the probe is not due: the loop is idle
    watch.set_cpu_clock(time.pthread_getcpuclockid(threading.get_ident()))
    start = time.monotonic()
    stopped, now, _sample, next_sample = watch.wait(due_stamp, start, None, start + 0.3, 2)
    assert not stopped and now >= start + 0.3
    assert watch.looks_in_c >= 5 and watch.busy_looks_in_c == 0  # ~15 samples at 20 ms
    assert watch.last_tick > start  # an idle sample still moves the held-time baseline
    assert math.isnan(watch.seen_wall)
    assert next_sample > now


def test_a_busy_stretch_crossing_the_threshold_returns_to_python() -> None:
    # held_share 1.0: a sample never has held time worth Python (a busy machine may take the
    # spinning thread off the CPU for a while): only the threshold sends the look back
    c, watch = _watch(threshold=0.1, held_share=1.0)
    due_stamp = c.DueStamp()
    done = threading.Event()

    def spin() -> None:  # the "loop thread": on the CPU throughout (no held time to add)
        while not done.is_set():
            pass

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        watch.set_cpu_clock(time.pthread_getcpuclockid(thread.ident))
        start = time.monotonic()
        due_stamp.set(start)  # overdue from now on: busy since `start`
        stopped, now, _sample, _next = watch.wait(due_stamp, start + 0.01, None, start + 60,
                                                  2)
    finally:
        done.set()
        thread.join()
    # back at the first look that sees the stretch cross the threshold, not at the duty
    assert not stopped and 0.1 <= now - start < 30
    assert watch.busy_looks_in_c >= 1  # the looks before it, below the threshold, were C's


def test_a_sample_with_held_time_off_the_cpu_returns_to_python() -> None:
    c, watch = _watch()
    due_stamp = c.DueStamp()
    sleeper = threading.Event()
    thread = threading.Thread(target=sleeper.wait)  # the "loop thread": asleep, off the CPU
    thread.start()
    try:
        watch.set_cpu_clock(time.pthread_getcpuclockid(thread.ident))
        start = time.monotonic()
        due_stamp.set(start)  # busy (well under the threshold of 10 s)
        watch.last_tick, watch.held_cpu = start, time.clock_gettime(
            time.pthread_getcpuclockid(thread.ident))
        stopped, now, sample, _next = watch.wait(due_stamp, start + 0.01, None, start + 60, 2)
        assert not stopped and sample and now - start < 30
        assert watch.last_tick == start  # left for Python, which attributes the gap
        # the same look with held time not wanted from C (no busy sampler): Python's too
        stopped, now, sample, _next = watch.wait(due_stamp, now + 0.01, None, now + 60, 1)
        assert not stopped and sample
    finally:
        sleeper.set()
        thread.join()


def test_stop_wakes_the_wait_from_another_thread() -> None:
    _c, watch = _watch()
    result: list = []
    start = time.monotonic()
    thread = threading.Thread(target=lambda: result.append(
        watch.wait(None, start + 3600, None, None, 0)))
    thread.start()
    watch.stop()
    thread.join(30)
    assert result and result[0][0] is True


def test_a_watch_copied_by_fork_refuses_to_wait_and_a_new_one_works() -> None:
    c, watch = _watch()
    pid = os.fork()
    if pid == 0:  # the child: exit status says what it saw
        code = 1
        try:
            watch.wait(None, time.monotonic(), None, None, 0)
        except RuntimeError:
            fresh = c.Watch(0.01, 1.0, 0.0005, 0.1, 1)
            code = 0 if fresh.wait(None, time.monotonic(), None, None, 0)[0] is False else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_wait_refuses_a_clock_of_another_type() -> None:
    _c, watch = _watch()
    with pytest.raises(TypeError):
        watch.wait(object(), time.monotonic(), None, None, 2)
