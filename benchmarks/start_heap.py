"""What `introspect.start()` at defaults adds to the host's heap, and what full collections
then walk under task churn (issue 17: GC pause under churn within 10 % of plain).

    .venv/bin/python benchmarks/start_heap.py [--root DIR] [--tasks 100000]

Three fresh processes: a bare `python -c` (modules and GC-tracked objects before start(),
when it returns, and once the server thread has imported what a client needs and settled the
agent's definitions out of the generations, agent/permanent.py), an asyncio host (`import
asyncio, logging` first: what a service pays), and workload B with the agent (settled first):
the tracked objects after the warm-up, the collections per generation, and the tracked objects
each gen-2 collection walked (`len(gc.get_objects())` at its start, from a
`gc.callbacks` entry). Object and module counts are deterministic; the collection counts
nearly so (the agent's threads allocate on a clock); the objects a gen-2 collection walks vary
by ~1k with the moment it falls in the churn (how many tasks are alive then).
`--root` points at another checkout to compare (its C extension must be built).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ADDED = r'''
import gc, json, sys
sys.path.insert(0, {root!r})
{host}
import introspect
modules, objects = len(sys.modules), len(gc.get_objects())
introspect.start()
returned = len(gc.get_objects())
import time
from introspect.agent import permanent
deadline = time.monotonic() + 60  # the server thread's imports and settling (permanent.py)
while time.monotonic() < deadline and not permanent.start_settled.is_set():
    time.sleep(0.01)
print(json.dumps({{"modules": [modules, len(sys.modules)],
                  "objects": [objects, returned, len(gc.get_objects())],
                  "settled": permanent.settled_objects}}))
'''

CHURN = r'''
import asyncio, gc, json, sys
sys.path.insert(0, {root!r})
from benchmarks.workloads import workload_b
walked = []
def on_gc(phase, info):
    if phase == "start" and info["generation"] == 2:
        walked.append(len(gc.get_objects()))
async def main():
    if {agent}:
        import introspect
        introspect.start()
        from benchmarks.workloads import agent_settled
        await agent_settled()
    await workload_b(20_000)
    heap = len(gc.get_objects())
    before = [g["collections"] for g in gc.get_stats()]
    gc.callbacks.append(on_gc)
    await workload_b({tasks})
    gc.callbacks.remove(on_gc)
    after = [g["collections"] for g in gc.get_stats()]
    print(json.dumps({{"collections": [b - a for a, b in zip(before, after)],
                      "walked": walked, "heap": heap}}))
asyncio.run(main())
'''


def child(source: str, runtime_dir: str) -> dict:
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                         check=True, cwd=ROOT,
                         env=dict(os.environ, INTROSPECT_RUNTIME_DIR=runtime_dir))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(ROOT), help="the checkout to measure")
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    root = str(Path(args.root).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        for name, host in (("bare python -c", ""), ("asyncio host", "import asyncio, logging")):
            got = child(ADDED.format(root=root, host=host), tmp)
            (m0, m1), (o0, o1, o2) = got["modules"], got["objects"]
            print(f"{name:15} start() imports {m1 - m0:4} modules ({m0} -> {m1}) with its "
                  f"server thread's; it returns with {o1 - o0:+6,} GC-tracked objects "
                  f"({o0:,} -> {o1:,}); settled: {o2 - o0:+6,} in the generations "
                  f"({got['settled']:,} moved out)")
        for agent in (False, True):
            got = child(CHURN.format(root=root, agent=agent, tasks=args.tasks), tmp)
            walked = got["walked"]
            mean = sum(walked) / len(walked) if walked else 0
            print(f"workload B {args.tasks:,} tasks, {'agent' if agent else 'plain':5}: "
                  f"heap after warm-up {got['heap']:,} objects, collections (gen 0/1/2) "
                  f"{got['collections']}, each gen-2 walked {mean:,.0f} objects on average "
                  f"({sum(walked):,} in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
