"""The agent's periodic duties (lints, samples of waits, history and queue waiters, queue-call
windows; blocking.py) are made by the loop thread on the lag probe's beat, so the watchdog
does not ask a saturated loop for the GIL (it would wait for up to seconds while every
`select(0)` woke it in vain). The watchdog makes them only while the loop is blocked, and
when no loop is attached. Ground truth: each pass records the thread that made it, and the
history the passes sample. Crossversion (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from introspect.agent.blocking import LOOP_DUTY_GRACE

PURE_PYTHON_WAIT = 'import sys\nsys.modules["introspect.agent._watchdog_accel"] = None\n'

LOOP_PROGRAM = r'''
import asyncio, json, sys, threading, time
import introspect

if "{loop}" == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

agent = introspect.start()
blocking = agent.blocking
passes = []  # the thread that made each pass of the duties
original = blocking._duties


def recording(now):
    passes.append(threading.current_thread().name)
    original(now)


blocking._duties = recording


def report(name, first, history_before):
    print(json.dumps({{"phase": name, "threads": passes[first:],
                      "history": len(blocking.history._ring) - history_before}}), flush=True)


async def saturate(name):
    """Short CPU-bound steps back to back, until three more passes were made and two history
    samples taken (polled)."""
    first, history = len(passes), len(blocking.history._ring)
    deadline = time.monotonic() + 60
    while (len(passes) - first < 3 or len(blocking.history._ring) - history < 2) and \
            time.monotonic() < deadline:
        stop = time.monotonic() + 0.05
        while time.monotonic() < stop:
            sum(range(2000))
            await asyncio.sleep(0)
    report(name, first, history)


async def main():
    # started before the loop existed: the watchdog made the passes until the loop was
    # attached; from the loop's first pass on, they are the loop's
    deadline = time.monotonic() + 60
    while "MainThread" not in passes and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await saturate("saturated")
    first, history = len(passes), len(blocking.history._ring)
    time.sleep({block})  # one step holds the loop: the beat cannot run
    report("blocked", first, history)
    await saturate("recovered")


asyncio.run(main())
'''


def _phases(program: str) -> dict[str, dict]:
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         timeout=180, env={**os.environ, "INTROSPECT_HOST_LOG": "off"})
    assert out.returncode == 0, out.stderr
    return {p["phase"]: p for p in map(json.loads, out.stdout.splitlines())}


@pytest.mark.parametrize("loop, wait", [("asyncio", "c"), ("asyncio", "python"),
                                        ("uvloop", "c")])
def test_the_loop_makes_the_duties_and_the_watchdog_only_while_it_is_blocked(
        loop: str, wait: str) -> None:
    block = LOOP_DUTY_GRACE + 3.0
    program = LOOP_PROGRAM.format(loop=loop, block=block)
    if wait == "python":
        program = PURE_PYTHON_WAIT + program
    phases = _phases(program)
    saturated, blocked, recovered = phases["saturated"], phases["blocked"], phases["recovered"]
    # a saturated loop: every pass is the loop thread's, and the history is sampled
    assert len(saturated["threads"]) >= 3, saturated
    assert set(saturated["threads"]) == {"MainThread"}, saturated
    assert saturated["history"] >= 2, saturated
    # blocked for 4 s: the watchdog takes them over after the grace (then every ~1.2 s)
    assert len(blocked["threads"]) >= 2, blocked
    assert set(blocked["threads"]) == {"introspect-watchdog"}, blocked
    assert blocked["history"] >= 2, blocked
    # back: the loop's beat wins them back (the watchdog may have made the one due just as
    # the block ended)
    assert recovered["threads"][-3:] == ["MainThread"] * 3, recovered


NO_LOOP_PROGRAM = r'''
import json, threading, time
import introspect

agent = introspect.start()
blocking = agent.blocking
passes = []
original = blocking._duties


def recording(now):
    passes.append(threading.current_thread().name)
    original(now)


blocking._duties = recording
deadline = time.monotonic() + 60
while len(passes) < 3 and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({"threads": passes, "by_watchdog": blocking.duties_by_watchdog}))
'''


def test_without_a_loop_the_watchdog_makes_the_duties() -> None:
    out = subprocess.run([sys.executable, "-c", NO_LOOP_PROGRAM], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "INTROSPECT_HOST_LOG": "off"})
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert len(seen["threads"]) >= 3, seen
    assert set(seen["threads"]) == {"introspect-watchdog"}, seen


def test_the_c_wait_reads_a_moved_due_stamp_at_each_wake_up() -> None:
    from introspect.agent import _watchdog_accel as c

    watch = c.Watch(0.02, 10.0, 0.0005, 0.1, 12345)
    idle = c.DueStamp()
    idle.set(time.monotonic() + 3600)  # the loop is idle: each sample is a look made in C
    watch.set_cpu_clock(time.pthread_getcpuclockid(threading.get_ident()))
    duty = c.DueStamp()  # 0.0: not armed
    moved: list[float] = []
    result: list = []
    start = time.monotonic()
    waiter = threading.Thread(target=lambda: result.append(
        watch.wait(idle, start, None, duty, 2)))
    waiter.start()
    try:
        deadline = time.monotonic() + 30
        while watch.looks_in_c < 5 and time.monotonic() < deadline:  # it is waiting, in C
            time.sleep(0.01)
        assert not result and watch.looks_in_c >= 5
        duty.set(time.monotonic() + 3600)  # moved on (the loop made the duties)
        looks = watch.looks_in_c
        while watch.looks_in_c < looks + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not result  # still waiting: the stamp was read again, not due
        moved.append(time.monotonic())
        duty.set(moved[0])  # due now: the watchdog's turn
        waiter.join(30)
    finally:
        watch.stop()
        waiter.join(30)
    stopped, now, _sample, _next = result[0]
    assert not stopped and now >= moved[0]
