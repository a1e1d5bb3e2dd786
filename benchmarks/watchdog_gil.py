"""How often the agent's watchdog thread asks a saturated loop for the GIL, and how long it
waits for it (issue 17).

    .venv/bin/python benchmarks/watchdog_gil.py [--seconds 10] [--runs 3]

A loop that never waits lets the GIL go only inside `select(0)` (about a microsecond) and takes
it back before a waiting thread wakes up; each release meanwhile wakes that thread in vain
(a futex wake-up on the loop's critical path). So a thread's turn can take seconds. Each run:
a fresh process starts the agent, runs workload A (saturated) for `--seconds`, and reports
the watchdog's returns to Python by reason, the time from each return's wake-up to Python
running (its wait for the GIL), and which thread made the agent's periodic duties.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r'''
import asyncio, collections, json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.workloads import agent_settled, workload_a
import introspect
from introspect.agent import blocking, watch

reasons = collections.Counter()
waits = []
original_new_watch = blocking.new_watch


class Timed:  # the C wait, with the time from each return's wake-up to Python noted
    def __init__(self, watch):
        object.__setattr__(self, "watch", watch)

    def __getattr__(self, name):
        return getattr(self.watch, name)

    def __setattr__(self, name, value):
        setattr(self.watch, name, value)

    def wait(self, clock, next_sample, deadline, due, mode):
        result = self.watch.wait(clock, next_sample, deadline, due, mode)
        now = result[1]
        waits.append(time.monotonic() - now)
        due_at = due.value if hasattr(due, "value") else due
        reasons["duties" if due_at is not None and due_at > 0 and now >= due_at else
                "block look" if mode == 0 or (deadline is not None and now >= deadline) else
                "held-time sample" if result[2] else "other"] += 1
        return result


blocking.new_watch = lambda *args: Timed(original_new_watch(*args))


async def main():
    agent = introspect.start()
    await agent_settled()
    await workload_a(1.0)
    reasons.clear()
    waits.clear()
    handoffs = getattr(watch._accel, "handoffs", lambda: (None, None))
    handed_off = handoffs()[0]
    on_loop = getattr(agent.blocking, "duties_on_loop", None)
    by_watchdog = getattr(agent.blocking, "duties_by_watchdog", None)
    await workload_a({seconds})
    print(json.dumps({{
        "returns": dict(reasons), "gil_wait_total": sum(waits),
        "gil_wait_max": max(waits, default=0.0),
        "handoffs": None if handed_off is None else handoffs()[0] - handed_off,
        "duties_on_loop": None if on_loop is None else agent.blocking.duties_on_loop - on_loop,
        "duties_by_watchdog": None if by_watchdog is None else
        agent.blocking.duties_by_watchdog - by_watchdog}}))

asyncio.run(main())
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="of workload A per run")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (default 3)")
    args = parser.parse_args()
    print(f"workload A (saturated loop), {args.seconds:g} s per run, agent at defaults:")
    for run in range(args.runs):
        code = WORKER.format(root=str(ROOT), seconds=args.seconds)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=args.seconds * 10 + 120,
                             env={**os.environ, "INTROSPECT_HOST_LOG": "off"})
        if out.returncode != 0:
            print(f"error: run {run + 1} failed: {out.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr)
            return 1
        got = json.loads(out.stdout.splitlines()[-1])
        share = got["gil_wait_total"] / args.seconds
        print(f"  run {run + 1}: watchdog returns to Python {got['returns']}; waited for the "
              f"GIL {got['gil_wait_total']:.2f} s in all ({share:.0%} of the run), longest "
              f"{got['gil_wait_max'] * 1e3:.0f} ms; duties made by the loop "
              f"{got['duties_on_loop']}, by the watchdog {got['duties_by_watchdog']}; the "
              f"loop let an agent thread take the GIL first {got['handoffs']} times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
