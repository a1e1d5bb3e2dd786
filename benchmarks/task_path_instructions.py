"""Instructions per task of workload B (task churn) on the event loop's thread, by callgrind:
plain, the counting task factory alone (C, and the pure-Python fallback), the agent at
defaults. Instruction counts do not drift with the shared machine's load as its clocks do.

    .venv/bin/python benchmarks/task_path_instructions.py [--small 10000] [--large 40000]

Each configuration runs twice in its own process (`small` and `large` tasks); the main
thread's count difference divided by the task difference removes start-up and leaves the
per-task cost. Prints each configuration's instructions per task and plain/configuration (the
"tasks per instruction" ratio, comparable with the loop-thread-CPU ratio of agent_overhead.py).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ["plain", "factory-c", "factory-python", "defaults", "defaults-python"]

CHILD = r'''
import asyncio, sys
sys.path.insert(0, {root!r})
mode, n = sys.argv[1], int(sys.argv[2])
if mode.endswith("python"):
    sys.modules["introspect.agent._tasks_accel"] = None  # the pure-Python fallback
from benchmarks.workloads import workload_b
async def main():
    if mode.startswith("factory"):
        from introspect.agent.collectors.tasks import TaskCollector
        collector = TaskCollector(lambda *a: None, lambda *a: None)
        asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
    elif mode.startswith("defaults"):
        import introspect
        introspect.start()
    await workload_b(n)
asyncio.run(main())
'''


def main_thread_instructions(out_prefix: str) -> int:
    """Instructions of thread 1 (the event loop's), from callgrind's per-thread files."""
    main = sorted(glob.glob(out_prefix + "-*"))[0]
    for line in Path(main).read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {main}")


def count(mode: str, n: int, tmp: str) -> int:
    prefix = os.path.join(tmp, f"cg.{mode}.{n}")
    subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                    f"--callgrind-out-file={prefix}", sys.executable, "-c",
                    CHILD.format(root=str(ROOT)), mode, str(n)],
                   check=True, capture_output=True, cwd=ROOT)
    return main_thread_instructions(prefix)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=40_000)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed", file=sys.stderr)
        return 2
    per_task: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            small, large = count(mode, args.small, tmp), count(mode, args.large, tmp)
            per_task[mode] = (large - small) / (args.large - args.small)
            ratio = per_task["plain"] / per_task[mode] if "plain" in per_task else float("nan")
            print(f"{mode:16} {per_task[mode]:8,.0f} instructions per task   "
                  f"{ratio:.3f}x plain", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
