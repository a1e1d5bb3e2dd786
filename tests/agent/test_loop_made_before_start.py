"""A loop made before `introspect.start()` and run after it (`loop = asyncio.new_event_loop()`
in module code, `asyncio.set_event_loop(loop)` or not, then `loop.run_until_complete(main())`
or `loop.run_forever()`: older code, gunicorn workers) is attached as it starts running: its
tasks are counted, its lag measured, a block in it reported with the block's duration. So is a
uvloop loop made by `uvloop.new_event_loop()` when uvloop was imported after `start()`. Under
`-W error::DeprecationWarning` (3.14 deprecates the policy functions). Crossversion."""

from __future__ import annotations

import pytest

from tests.support.procs import AgentProcess, wait_until

pytestmark = pytest.mark.crossversion  # (tests/conftest.py registers the marker)

PARKED = 7

# `HOLD_FIRST`: the block is main()'s first step (the loop has been back in select() once, to
# run it); else the loop idles a while first.
PROGRAM = f"""
import asyncio, os, time
import introspect

async def parked(event):
    await event.wait()

def hold_the_loop():
    start = time.monotonic()
    time.sleep(0.6)
    return time.monotonic() - start

async def main():
    if not os.environ["HOLD_FIRST"]:
        await asyncio.sleep(0.3)
    held = hold_the_loop()
    print(f"RELEASED {{held:.6f}}", flush=True)
    event = asyncio.Event()
    tasks = [asyncio.create_task(parked(event)) for _ in range({PARKED})]
    print("PARKED", flush=True)
    await event.wait()

if os.environ["LOOP"] == "uvloop":  # imported after start(), it binds the agent's hook
    introspect.start()
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
if os.environ["SET_CURRENT"]:
    asyncio.set_event_loop(loop)
if os.environ["LOOP"] == "asyncio":
    introspect.start()
if os.environ["RUN"] == "forever":
    loop.create_task(main())
    loop.run_forever()
else:
    loop.run_until_complete(main())
"""

# (loop, run, set_current, hold_first)
CASES = [("asyncio", "until_complete", False, True), ("asyncio", "until_complete", True, False),
         ("asyncio", "forever", False, False), ("asyncio", "forever", True, True),
         ("uvloop", "until_complete", False, True), ("uvloop", "forever", True, False)]


@pytest.mark.parametrize(("loop", "run", "set_current", "hold_first"), CASES,
                         ids=[f"{lp}-{r}-{'set' if s else 'unset'}-{'first' if h else 'later'}"
                              for lp, r, s, h in CASES])
def test_a_loop_made_before_start_is_attached_when_it_runs(
        loop: str, run: str, set_current: bool, hold_first: bool) -> None:
    env = {"LOOP": loop, "RUN": run, "SET_CURRENT": "1" if set_current else "",
           "HOLD_FIRST": "1" if hold_first else "",
           "PYTHONWARNINGS": "error::DeprecationWarning"}
    with AgentProcess.script(PROGRAM, under_run=False, env=env) as proc:
        held = float(proc.wait_for_line("RELEASED").split()[1])
        proc.wait_for_line("PARKED")
        # the lag probe runs on it: the block shows in the lag too; and the watchdog sees the
        # block end at its next look, which may come after the program says RELEASED
        def settled() -> object:
            snap = proc.snapshot()
            finished = [e for e in snap.to_dict()["events"]
                        if e["kind"] == "blocking" and not e["ongoing"]]
            return snap if snap.tasks.total == PARKED + 1 and \
                snap.loop.lag_max_seconds >= 0.4 and finished else None

        snap = wait_until(settled, message="main() and the parked tasks counted, the block's "
                                           "lag, the block over")
        kinds = {k.kind: k.count for k in snap.tasks.by_kind}
        assert kinds == {"__main__.parked": PARKED, "__main__.main": 1}, kinds
        assert snap.loop.running and snap.loop.loop_class.startswith(loop), snap.loop
        assert snap.loop.lag_max_seconds <= held + 0.15, (snap.loop, held)
        events = [e for e in snap.to_dict()["events"] if e["kind"] == "blocking"]
        assert not any("Traceback" in line for line in proc.stderr), "".join(proc.stderr)
    assert len(events) == 1, events
    event = events[0]
    assert event["ongoing"] is False and event["exact"] is (loop == "asyncio"), event
    assert event["location"].endswith(" hold_the_loop"), event["location"]
    assert event["task"]["kind"] == "__main__.main", event["task"]
    assert event["culprit"] == "time.sleep", event["culprit"]
    # asyncio, exact: from the select() return before the step to the next select() after
    # it. uvloop: from the loop's start, or from when the lag probe was due (short by up to
    # its interval, 0.1 s), to the probe's next run.
    short_by = 0.1 if loop == "uvloop" and not hold_first else 0.02
    assert held - short_by <= event["duration"] <= held + 0.15, (event["duration"], held)


STOPPED = """
import asyncio
import introspect

original = asyncio.events._set_running_loop
loop = asyncio.new_event_loop()
agent = introspect.start()
hooked = asyncio.events._set_running_loop is not original
introspect.stop()
loop.run_until_complete(asyncio.sleep(0))
print("RESULT", hooked, asyncio.events._set_running_loop is original, agent.loop is None,
      flush=True)
"""


def test_a_stopped_agent_leaves_loops_that_run_later_alone() -> None:
    env = {"PYTHONWARNINGS": "error::DeprecationWarning"}
    with AgentProcess.script(STOPPED, under_run=False, env=env) as proc:
        assert proc.wait_for_line("RESULT").split()[1:] == ["True", "True", "True"]
