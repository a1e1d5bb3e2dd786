"""Instructions per task of workload B (task churn) on the event loop's thread, by callgrind:
plain, the counting task factory alone (C, and the pure-Python fallback), the agent at
defaults. Instruction counts do not drift with the shared machine's load as its clocks do.

    .venv/bin/python benchmarks/task_path_instructions.py [--small 10000] [--large 40000]
        [--modes plain,factory-c,defaults] [--no-created-at]

Each configuration runs twice in its own process (`small` and `large` tasks); the main
thread's count difference divided by the task difference removes start-up and leaves the
per-task cost. Prints each configuration's instructions per task and plain/configuration (the
"tasks per instruction" ratio, comparable with the loop-thread-CPU ratio of agent_overhead.py).

The GC figure (issue 17: pauses under churn within 10 % of plain): the loop thread's
instructions inside the cyclic collector per task (callgrind's inclusive count of CPython's
`gc_collect_main`, start-up removed the same way; the `gc.callbacks` around it, the agent's
pause timer among them, are not in it) and the collections per generation per 1000 tasks —
deterministic where wall-clock pauses on this VM are not.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ["plain", "factory-c", "factory-python", "defaults", "defaults-python",
         "defaults-no-sampling", "defaults-unsettled"]
GC_FUNCTION = "gc_collect_main"  # the collector proper, CPython 3.11-3.13

CHILD = r'''
import asyncio, gc, json, sys
sys.path.insert(0, {root!r})
mode, n, created_at = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
if mode.endswith("python"):
    sys.modules["introspect.agent._tasks_accel"] = None  # the pure-Python fallback
from benchmarks.workloads import workload_b
async def main():
    if mode.startswith("factory"):
        from introspect.agent.collectors.tasks import TaskCollector
        collector = TaskCollector(lambda *a: None, lambda *a: None, created_at=created_at)
        asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
    elif mode.startswith("defaults"):
        import introspect
        if mode == "defaults-unsettled":  # the agent's definitions left in the generations
            from introspect.agent import permanent
            permanent.available = lambda: False
        introspect.start(task_created_at=created_at, sampling="no-sampling" not in mode)
        from benchmarks.workloads import agent_settled
        await agent_settled()  # both runs from the same settled state: start-up cancels out
    before = [g["collections"] for g in gc.get_stats()]
    await workload_b(n)
    after = [g["collections"] for g in gc.get_stats()]
    print(json.dumps([b - a for a, b in zip(before, after)]))
asyncio.run(main())
'''


def main_thread_instructions(out_prefix: str) -> tuple[int, int]:
    """Instructions of thread 1 (the event loop's), from callgrind's per-thread files, and
    the inclusive instructions of the collector on it."""
    main = sorted(glob.glob(out_prefix + "-*"))[0]
    total = None
    for line in Path(main).read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
            break
    if total is None:
        raise SystemExit(f"no totals in {main}")
    gc_cost = 0
    if shutil.which("callgrind_annotate"):
        report = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                                 main], capture_output=True, text=True).stdout
        for line in report.splitlines():
            if line.rstrip().endswith(f":{GC_FUNCTION}") or f":{GC_FUNCTION} [" in line:
                gc_cost = max(gc_cost, int(line.split()[0].replace(",", "")))
    return total, gc_cost


def count(mode: str, n: int, tmp: str, created_at: bool) -> tuple[int, int, list]:
    prefix = os.path.join(tmp, f"cg.{mode}.{n}")
    out = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                          f"--callgrind-out-file={prefix}", sys.executable, "-c",
                          CHILD.format(root=str(ROOT)), mode, str(n), str(int(created_at))],
                         check=True, capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, INTROSPECT_RUNTIME_DIR=tmp))
    total, gc_cost = main_thread_instructions(prefix)
    return total, gc_cost, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=40_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-created-at", action="store_true",
                        help="the agent without each task's creation site (task_created_at)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed", file=sys.stderr)
        return 2
    per_task: dict[str, float] = {}
    gc_per_task: dict[str, float] = {}
    span = args.large - args.small
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            small = count(mode, args.small, tmp, not args.no_created_at)
            large = count(mode, args.large, tmp, not args.no_created_at)
            per_task[mode] = (large[0] - small[0]) / span
            ratio = per_task["plain"] / per_task[mode] if "plain" in per_task else float("nan")
            gc_per_task[mode] = (large[1] - small[1]) / span
            gc_ratio = (f"{gc_per_task[mode] / gc_per_task['plain']:.3f}x plain"
                        if gc_per_task.get("plain") else "-")
            collections = [round((b - a) * 1000 / span, 2)
                           for a, b in zip(small[2], large[2], strict=True)]
            print(f"{mode:16} {per_task[mode]:8,.0f} instructions per task   "
                  f"{ratio:.3f}x plain   GC: {gc_per_task[mode]:6,.0f} per task ({gc_ratio}), "
                  f"collections per 1000 tasks by generation {collections}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
