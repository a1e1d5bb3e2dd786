"""Time paused in garbage collection under task churn (workload B), plain vs the agent at
defaults, in alternating fresh processes (issue 17: within 10 % of plain).

    .venv/bin/python benchmarks/gc_churn.py [--pairs 6] [--tasks 200000]

Each process measures its own pauses with a `gc.callbacks` pair (start/stop, perf_counter) and
counts collections per generation. What the agent could feed the collector per task: a
TaskMeta (not a GC object, so not counted towards a young-generation collection), and the
finished tasks its young ring holds until a new task looks at them (a few new tasks later;
BENCHMARKS.md "GC under churn"). What remains is the larger heap each collection examines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import asyncio, gc, json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.workloads import workload_b
paused = [0.0, 0.0]
def on_gc(phase, info):
    if phase == "start":
        paused[1] = time.perf_counter()
    else:
        paused[0] += time.perf_counter() - paused[1]
async def main():
    if {agent}:
        import introspect
        introspect.start()
    await workload_b(20_000)
    before = [g["collections"] for g in gc.get_stats()]
    paused[0] = 0.0
    gc.callbacks.append(on_gc)
    await workload_b({tasks})
    gc.callbacks.remove(on_gc)
    after = [g["collections"] for g in gc.get_stats()]
    runs = [b - a for a, b in zip(before, after)]
    print(json.dumps({{"paused": paused[0], "collections": runs}}))
asyncio.run(main())
'''


def run(agent: bool, tasks: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), agent=agent,
                                                            tasks=tasks)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=200_000)
    args = parser.parse_args()
    ratios = []
    for i in range(args.pairs):
        order = [False, True] if i % 2 == 0 else [True, False]
        results = {agent: run(agent, args.tasks) for agent in order}
        ratios.append(results[True]["paused"] / results[False]["paused"])
        print(f"pair {i + 1}: plain {results[False]['paused'] * 1e3:.1f} ms "
              f"{results[False]['collections']}, agent {results[True]['paused'] * 1e3:.1f} ms "
              f"{results[True]['collections']} ({ratios[-1]:.3f}x)", flush=True)
    print(f"GC pause under churn, agent/plain: median {statistics.median(ratios):.3f}x "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); goal <= 1.10x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
