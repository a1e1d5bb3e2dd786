"""A loop that blocks right after the agent starts (a sync migration, a blocking connect in
start-up code) is reported like any other block: one event, seen while it goes on, its
duration the block's, counted in `python_asyncio_loop_blocks_total`. Every way of starting the
agent (`introspect.start()` inside the running loop, before it, `introspect run`), asyncio and
uvloop, the C wait and the Python one. And a loop that merely starts, idles or does short work
reports nothing. Crossversion (tests/conftest.py)."""

from __future__ import annotations

import re
import textwrap
import urllib.request

import pytest

from tests.support.procs import AgentProcess, wait_until

pytestmark = pytest.mark.crossversion  # (tests/conftest.py registers the marker)

THRESHOLD = 0.1  # INTROSPECT_BLOCK_THRESHOLD's default
PROBE_INTERVAL = 0.1  # the lag probe's
PYTHON_WAIT = 'import sys\nsys.modules["introspect.agent._watchdog_accel"] = None\n'

# How both programs run main(): the agent started before the loop or inside it, on asyncio or
# on uvloop.
RUN_MAIN = """
if os.environ["START"] == "before":
    introspect.start()
if os.environ["LOOP"] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""

# Holds the loop for at least a second, and until the test writes a line: long enough to be
# seen while it goes on, however loaded the machine. `cpu`: pure Python; `sleep`: time.sleep.
TARGET = """
import asyncio, os, select, sys, time
import introspect

def hold_the_loop(kind):
    start = time.monotonic()
    while time.monotonic() - start < 1.0 or not select.select([sys.stdin], [], [], 0)[0]:
        if kind == "cpu":
            until = time.monotonic() + 0.005
            while time.monotonic() < until:
                pass
        else:
            time.sleep(0.005)
        if time.monotonic() - start > 60:
            break
    sys.stdin.readline()
    return start

async def main():
    before = time.monotonic()
    if os.environ["START"] == "inside":
        introspect.start()
    print("metrics " + introspect.get_agent().extensions["metrics"].url, flush=True)
    print("HOLDING", flush=True)
    start = hold_the_loop(os.environ["KIND"])
    end = time.monotonic()
    print(f"RELEASED {end - start:.6f} {end - before:.6f}", flush=True)
    await asyncio.sleep(3600)
"""


def _blocking(proc: AgentProcess) -> list[dict]:
    return [e for e in proc.snapshot().to_dict()["events"] if e["kind"] == "blocking"]


def _blocks_total(url: str) -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return float(re.search(r"^python_asyncio_loop_blocks_total (\S+)$", text, re.M).group(1))


# (start, loop, wait, kind, exact); `run` is `introspect run`, where the C wait is the one
# loaded before the script. Exact: the block began after a select() the agent time-stamped;
# else its start is a lower bound (the agent's own start, or the lag probe's due time).
CASES = [
    ("inside", "asyncio", "c", "cpu", False),
    ("inside", "asyncio", "python", "sleep", False),
    ("inside", "uvloop", "c", "sleep", False),
    ("inside", "uvloop", "python", "cpu", False),
    ("before", "asyncio", "c", "sleep", True),
    ("before", "asyncio", "python", "cpu", True),
    ("before", "uvloop", "c", "cpu", False),
    ("before", "uvloop", "python", "sleep", False),
    ("run", "asyncio", "c", "cpu", True),
    ("run", "uvloop", "c", "sleep", False),
]


@pytest.mark.parametrize(("start", "loop", "wait", "kind", "exact"), CASES,
                         ids=["-".join(c[:4]) for c in CASES])
def test_a_block_right_after_start_is_one_event_seen_while_it_goes_on(
        start: str, loop: str, wait: str, kind: str, exact: bool) -> None:
    source = (PYTHON_WAIT if wait == "python" else "") + TARGET + RUN_MAIN
    env = {"START": start, "LOOP": loop, "KIND": kind, "INTROSPECT_METRICS_PORT": "0"}
    with AgentProcess.script(source, under_run=start == "run", env=env) as proc:
        url = proc.wait_for_line("metrics ").split(" ", 1)[1].strip()
        proc.wait_for_line("HOLDING")
        ongoing = wait_until(lambda: [e for e in _blocking(proc) if e["ongoing"]],
                             timeout=20, message="the block reported while it goes on")
        assert not any("RELEASED" in line for line in proc.stdout), "seen only after the block"
        event = ongoing[0]
        assert event["duration"] >= THRESHOLD, event
        assert event["location"].endswith(" hold_the_loop"), event["location"]
        # the task that called start() (uvloop.run wraps main() in a coroutine of its own)
        assert event["task"]["kind"] in ("__main__.main", "uvloop.run.<locals>.wrapper"), event
        assert "main" in [f["function"] for f in event["stack"]], event["stack"]
        notes = "\n".join(proc.snapshot().agent.limitations)
        timed_by_probe = "durations are lower bounds, short by up to the lag probe's " \
            f"interval ({PROBE_INTERVAL:g}s)"
        assert (timed_by_probe in notes) is (loop == "uvloop"), notes
        proc.proc.stdin.write("go\n")
        proc.proc.stdin.flush()
        held, since_main = map(float, proc.wait_for_line("RELEASED").split()[1:])
        finished = wait_until(lambda: [e for e in _blocking(proc) if not e["ongoing"]],
                              message="the block's end")
        assert len(_blocking(proc)) == 1, _blocking(proc)
        assert _blocks_total(url) == 1
    duration = finished[0]["duration"]
    assert finished[0]["exact"] is exact
    # From above: the loop's next select() ends it (under uvloop the lag probe's next run).
    # From below: exact, or from when start() returned (called inside the loop: before the
    # block), or, under uvloop with the agent started before the loop, from when the lag
    # probe was due: short by up to its interval, as limitations() says.
    assert duration <= held + 0.15, (duration, held, since_main)
    # (the probe's due time itself comes from its timer: a few ms of scheduling slop)
    short_by = PROBE_INTERVAL + 0.02 if loop == "uvloop" and start != "inside" else 0.02
    assert duration >= max(THRESHOLD, held - short_by - 1e-6), (duration, held)


QUIET_START = """
import asyncio, os, time
import introspect

def short_work():
    sum(range(200))

async def worker(n):
    for _ in range(n):
        short_work()
        await asyncio.sleep(0)

async def main():
    loop = asyncio.get_running_loop()
    for _ in range(500):              # a start-up burst: many short callbacks queued
        loop.call_soon(short_work)
    if os.environ["START"] == "inside":
        introspect.start()
    await asyncio.sleep(0.5)          # idle: the loop waits in select()
    await asyncio.gather(*(worker(20) for _ in range(200)))   # short steps, back to back
    await asyncio.sleep(0.5)
    print("metrics " + introspect.get_agent().extensions["metrics"].url, flush=True)
    print("DONE", flush=True)
    await asyncio.sleep(3600)
"""

QUIET_CASES = [("inside", "asyncio", "c"), ("inside", "asyncio", "python"),
               ("inside", "uvloop", "c"), ("inside", "uvloop", "python"),
               ("before", "asyncio", "c"), ("before", "uvloop", "python")]


@pytest.mark.parametrize(("start", "loop", "wait"), QUIET_CASES,
                         ids=["-".join(c) for c in QUIET_CASES])
def test_a_loop_that_starts_idles_and_does_short_work_reports_no_block(
        start: str, loop: str, wait: str) -> None:
    source = (PYTHON_WAIT if wait == "python" else "") + textwrap.dedent(QUIET_START) + RUN_MAIN
    env = {"START": start, "LOOP": loop, "INTROSPECT_METRICS_PORT": "0"}
    with AgentProcess.script(source, under_run=False, env=env) as proc:
        proc.wait_for_line("DONE")
        url = proc.wait_for_line("metrics ").split(" ", 1)[1].strip()
        assert _blocking(proc) == []
        assert _blocks_total(url) == 0
