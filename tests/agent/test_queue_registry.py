"""What the discovery of queues leaves in the host: each queue an app makes is registered with
a weak reference that knows its key (no closure per queue), and leaves the registry with the
queue. Ground truth: the app knows how many queues it made and keeps or drops."""

from __future__ import annotations

import json
import subprocess
import sys

APP = r'''
import asyncio, gc, json, sys
import introspect
from introspect.agent import permanent

MADE = 1000

def tracked_after(make):
    """The fewest objects the collector gained over three tries (the agent's own threads
    may allocate meanwhile; they never free what the queues hold)."""
    best = kept = None
    for _ in range(3):
        kept = None  # the previous try's queues gone before counting
        gc.collect()
        before = len(gc.get_objects())
        kept = make()
        gained = len(gc.get_objects()) - before
        best = gained if best is None else min(best, gained)
    return kept, best

async def main():
    _, plain = tracked_after(lambda: [asyncio.Queue() for _ in range(MADE)])
    agent = introspect.start()
    if not permanent.start_settled.wait(60):  # its start-up imports done, settled
        sys.exit("the agent did not settle")
    kept, watched = tracked_after(lambda: [asyncio.Queue() for _ in range(MADE)])
    ours = {id(q) for q in kept}
    registered = sum(1 for obj, *_ in agent.queues.items() if id(obj) in ours)
    half = kept[: MADE // 2]
    del kept
    gc.collect()
    left = {id(obj) for obj, *_ in agent.queues.items()} & ours
    introspect.stop()
    print(json.dumps({"plain": plain, "watched": watched, "registered": registered,
                      "left": len(left), "kept": len(half)}))

asyncio.run(main())
'''


def test_each_queue_costs_two_tracked_objects_and_leaves_with_the_queue() -> None:
    out = subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True,
                         timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["registered"] == 1000, got
    # a weak reference and the registry's entry; before, also a closure, its cell and its
    # defaults (five per queue)
    per_queue = (got["watched"] - got["plain"]) / 1000
    assert per_queue <= 2.2, got
    assert got["left"] == got["kept"] == 500, got  # the dropped half left the registry
