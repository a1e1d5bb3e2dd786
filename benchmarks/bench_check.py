"""The headline cost figures next to their goals (issue 17): `make bench-check`.

    .venv/bin/python benchmarks/bench_check.py [--pairs 6] [--duration 2] [--no-callgrind]

Runs workloads A and B plain and under the agent at defaults in alternating fresh processes
(benchmarks/agent_overhead.py; the median of `pairs` pairs, with min and max), then — unless
--no-callgrind — callgrind instruction ratios of workload B on the loop thread
(benchmarks/task_path_instructions.py), which do not drift with a shared machine's load.
Prints one line per figure: ratio, spread, goal, and whether it meets it. Exit status 0 either
way: this reports, it does not gate (clocks on a shared VM are too noisy to gate on).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.agent_overhead import run_once  # noqa: E402

GOALS = [  # (label, key in a run's result, goal)
    ("workload A, wall clock", "a", 0.99),
    ("workload A, per loop-thread CPU", "a_per_loop_cpu", 0.99),
    ("workload A, per whole-process CPU", "a_per_cpu", 0.98),
    ("workload B (task churn), per loop-thread CPU", "b_per_loop_cpu", 0.90),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {key: [] for _label, key, _goal in GOALS}
    for i in range(args.pairs):
        order = [False, True] if i % 2 == 0 else [True, False]
        results = {agent: run_once(agent, args.duration) for agent in order}
        for key in ratios:
            ratios[key].append(results[True][key] / results[False][key])
        print(f"pair {i + 1}/{args.pairs}: " + ", ".join(
            f"{key} {values[-1]:.3f}x" for key, values in ratios.items()), flush=True)
    print(f"\nagent at defaults / plain, median of {args.pairs} alternating pairs:")
    for label, key, goal in GOALS:
        values = ratios[key]
        median = statistics.median(values)
        verdict = "meets" if median >= goal else "BELOW"
        print(f"  {label:46} {median:.3f}x (min {min(values):.3f}, max {max(values):.3f})"
              f"   goal >= {goal:.2f}x   {verdict}")
    if not args.no_callgrind:
        print("\nworkload B, callgrind instructions per task on the loop thread (goal >= 0.90x):",
              flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "task_path_instructions.py"),
                        "--modes", "plain,defaults"], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
