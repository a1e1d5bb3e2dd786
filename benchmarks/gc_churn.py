"""Time paused in garbage collection under task churn (workload B), plain vs the agent at
defaults, in alternating fresh processes (issue 17: within 10 % of plain).

    .venv/bin/python benchmarks/gc_churn.py [--pairs 6] [--tasks 200000]
        [--against defaults|at-start|unsettled|factory|imports|plain] [--host bare|fastapi]

Each process measures its own pauses with a `gc.callbacks` pair (start/stop, perf_counter), by
generation, and counts collections per generation and the objects in the generations before
the run. What the agent could feed the collector per task: a TaskMeta (not a GC object, so not
counted towards a young-generation collection), and the finished tasks its young ring holds
until a new task looks at them (a few new tasks later; BENCHMARKS.md "GC under churn"). The
rest is the larger heap a full (generation 2) collection examines. `--against`:
- `defaults`: the agent started, measured once it has settled (its server thread has imported
  what a client needs and moved the agent's definitions out of the generations,
  agent/permanent.py; ~0.2 s after start), the state a service runs in;
- `at-start`: measured right after start(), while that is still going on (the first second);
- `unsettled`: as `defaults` with the definitions left in the generations (before session 7);
- `factory`: the counting task factory alone (the per-task path, no agent started);
- `imports`: the agent imported as `start()` imports it, not started (its heap only);
- `plain`: the A/A control, plain against plain (the method's own spread).

A full collection walks the whole heap, so the ratio depends on how big the host's own heap is
next to the agent's: `--host bare` (default) is asyncio alone, ~20k objects, the worst case;
`--host fastapi` imports FastAPI and uvicorn's HTTP protocol first in both processes (~53k
objects), the smallest heap a web service has.
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
if {host!r} == "fastapi":
    import fastapi, uvicorn.protocols.http.h11_impl
from benchmarks.workloads import workload_b
paused = [0.0, 0.0, 0.0]
started = [0.0]
def on_gc(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        paused[info["generation"]] += time.perf_counter() - started[0]
async def main():
    if {mode!r} in ("defaults", "at-start", "unsettled"):
        import introspect
        from introspect.agent import permanent
        if {mode!r} == "unsettled":  # as before session 7: the agent's definitions stay put
            permanent.available = lambda: False
        introspect.start()
        if {mode!r} != "at-start":
            # The steady state a service runs in (~0.2 s after start; workloads.py)
            from benchmarks.workloads import agent_settled
            await agent_settled()
    elif {mode!r} == "factory":
        from introspect.agent.collectors.tasks import TaskCollector
        collector = TaskCollector(lambda *a: None, lambda *a: None)
        asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
    elif {mode!r} == "imports":
        import introspect.agent.core, introspect.metrics.default_registry  # what start() imports
    await workload_b(20_000)
    tracked = len(gc.get_objects())
    before = [g["collections"] for g in gc.get_stats()]
    gc.callbacks.append(on_gc)
    await workload_b({tasks})
    gc.callbacks.remove(on_gc)
    after = [g["collections"] for g in gc.get_stats()]
    runs = [b - a for a, b in zip(before, after)]
    print(json.dumps({{"paused": sum(paused), "by_generation": paused, "collections": runs,
                      "tracked": tracked}}))
asyncio.run(main())
'''


def run(mode: str, tasks: int, host: str = "bare") -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), mode=mode,
                                                            tasks=tasks, host=host)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ms(result: dict) -> str:
    by_gen = "/".join(f"{p * 1e3:.0f}" for p in result["by_generation"])
    return (f"{result['paused'] * 1e3:.1f} ms (gen 0/1/2 {by_gen}) {result['collections']}, "
            f"{result['tracked']} tracked")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--against", choices=["defaults", "at-start", "unsettled", "factory",
                                              "imports", "plain"],
                        default="defaults")
    parser.add_argument("--host", choices=["bare", "fastapi"], default="bare",
                        help="what both processes import first (the host's own heap)")
    args = parser.parse_args()
    ratios, tracked = [], []
    for i in range(args.pairs):
        # "plain" against "plain" is the A/A control: the method's own spread
        order = [("base", "plain"), ("other", args.against)]
        results = {key: run(mode, args.tasks, args.host)
                   for key, mode in (order if i % 2 == 0 else order[::-1])}
        ratios.append(results["other"]["paused"] / results["base"]["paused"])
        tracked.append(results["other"]["tracked"] / results["base"]["tracked"])
        print(f"pair {i + 1}: plain {ms(results['base'])}, {args.against} "
              f"{ms(results['other'])} ({ratios[-1]:.3f}x)", flush=True)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"GC pause under churn, {args.against}/plain: median {statistics.median(ratios):.3f}x "
          f"(IQR {quartiles[0]:.3f}-{quartiles[2]:.3f}, min {min(ratios):.3f}, max "
          f"{max(ratios):.3f}, {len(ratios)} pairs); goal <= 1.10x; objects in the generations "
          f"{statistics.median(tracked):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
