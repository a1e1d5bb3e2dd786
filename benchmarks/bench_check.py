"""The headline cost figures next to their goals (issue 17): `make bench-check`.

    .venv/bin/python benchmarks/bench_check.py [--rounds 6] [--pairs 10] [--no-callgrind]

Runs workloads A and B plain and under the agent at defaults in pairs of long-lived processes
driven in interleaved bursts (benchmarks/interleaved.py: the median of `rounds` × `pairs`
pairs, with its interquartile range), the time paused in GC under task churn in fresh process
pairs (benchmarks/gc_churn.py), then — unless --no-callgrind — callgrind instruction
ratios of workload B on the loop thread (benchmarks/task_path_instructions.py), which do not
drift with a shared machine's load. Prints one line per figure: ratio, spread, goal, and
whether it meets it. Exit status 0 either way: this reports, it does not gate (clocks on a
shared VM are too noisy to gate on).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.interleaved import interleave, report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="fresh process pairs")
    parser.add_argument("--pairs", type=int, default=10, help="burst pairs per round")
    parser.add_argument("--burst", type=float, default=0.5, help="seconds of workload A")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks of workload B")
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    ratios = interleave(args.pairs, args.burst, args.tasks, args.rounds)
    print(f"\nagent at defaults / plain, median of {args.rounds}×{args.pairs} interleaved pairs:")
    report(ratios)
    print("\ntime paused in GC under task churn, fresh process pairs (goal <= 1.10x):",
          flush=True)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gc_churn.py"), "--pairs", "6",
                    "--tasks", "100000"], cwd=ROOT, check=False)
    if not args.no_callgrind:
        print("\nworkload B, callgrind instructions per task on the loop thread (goal >= 0.90x):",
              flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "task_path_instructions.py"),
                        "--modes", "plain,defaults"], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
