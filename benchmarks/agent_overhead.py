"""Agent cost on the host (issue 2): workload A and B with and without the agent at defaults,
in alternating runs, each run in a fresh process; plus census cost at 10k vs 1M live tasks.

    .venv/bin/python benchmarks/agent_overhead.py [--rounds 5] [--duration 2] [--skip-census]

Wall-clock rates on a shared VM drift by ±30% between runs of the same configuration; the
loop thread's CPU time per message (time.thread_time) is the steadiest figure here and is
the one to compare. The agent's own threads are reported separately (process CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUNNER = r'''
import asyncio, json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.workloads import workload_a, workload_b
async def main():
    if {agent}:
        import introspect
        introspect.start()
        from benchmarks.workloads import agent_settled
        await agent_settled()  # the state a service runs in (~0.2 s after start)
    start_at = {start_at}
    if start_at:  # paired mode: both processes start measuring at the same moment
        await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu, loop_cpu = time.process_time(), time.thread_time()
    a = await workload_a({duration})
    a_cpu = time.process_time() - cpu  # all threads of the process, agent's included
    a_loop_cpu = time.thread_time() - loop_cpu  # the loop thread only
    loop_cpu = time.thread_time()
    b = await workload_b(100_000)
    b_loop_cpu = time.thread_time() - loop_cpu
    print(json.dumps({{"a": a, "a_per_cpu": a * {duration} / a_cpu,
                      "a_per_loop_cpu": a * {duration} / a_loop_cpu,
                      "b": b, "b_per_loop_cpu": 100_000 / b_loop_cpu}}))
asyncio.run(main())
'''

CENSUS = r'''
import asyncio, json, sys, time
sys.path.insert(0, {root!r})
import introspect
async def idle(ev):
    await ev.wait()
async def main():
    agent = introspect.start()
    ev = asyncio.Event()
    tasks = [asyncio.create_task(idle(ev)) for _ in range({n})]
    # main() existed before start(): it is adopted in chunks over the next loop iterations
    for _ in range(1000):
        await asyncio.sleep(0)
        if agent.snapshot(top_tasks=0).tasks.total == {n} + 1:
            break
    def best(fn, reps=5):
        times = []
        for _ in range(reps):
            t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
        return min(times)
    out = {{
        "counts_by_kind": best(agent.tasks.counts),
        "snapshot_no_task_rows": best(lambda: agent.snapshot(top_tasks=0), 3),
        "snapshot_20_oldest": best(lambda: agent.snapshot(top_tasks=20), 2),
    }}
    assert agent.snapshot(top_tasks=0).tasks.total == {n} + 1
    print(json.dumps(out))
    ev.set()
    await asyncio.gather(*tasks)
asyncio.run(main())
'''


def run_once(agent: bool, duration: float) -> dict:
    code = RUNNER.format(root=str(ROOT), agent=agent, duration=duration, start_at=0)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_paired(duration: float, agent_core: int) -> dict[bool, dict]:
    """Plain and agent at the same time, each pinned to its own core (swapped every round):
    both see the same machine, so their ratio is steadier than sequential runs on a shared
    host whose speed drifts."""
    import time

    start_at = time.time() + 2.0
    procs = {}
    for agent in (False, True):
        core = agent_core if agent else 1 - agent_core
        code = RUNNER.format(root=str(ROOT), agent=agent, duration=duration, start_at=start_at)
        procs[agent] = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", code],
                                        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    results = {}
    for agent, proc in procs.items():
        out, _ = proc.communicate()
        results[agent] = json.loads(out.strip().splitlines()[-1])
    return results


def census(n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CENSUS.format(root=str(ROOT), n=n)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--skip-census", action="store_true")
    parser.add_argument("--paired", action="store_true",
                        help="run plain and agent simultaneously, one per core (needs taskset)")
    args = parser.parse_args()
    ratios_a, ratios_b, ratios_cpu, ratios_loop_a, ratios_loop_b = [], [], [], [], []
    for i in range(args.rounds):
        order = [False, True] if i % 2 == 0 else [True, False]
        if args.paired:
            results = run_paired(args.duration, agent_core=i % 2)
        else:
            results = {agent: run_once(agent, args.duration) for agent in order}
        ratios_a.append(results[True]["a"] / results[False]["a"])
        ratios_b.append(results[True]["b"] / results[False]["b"])
        ratios_cpu.append(results[True]["a_per_cpu"] / results[False]["a_per_cpu"])
        ratios_loop_a.append(results[True]["a_per_loop_cpu"] / results[False]["a_per_loop_cpu"])
        ratios_loop_b.append(results[True]["b_per_loop_cpu"] / results[False]["b_per_loop_cpu"])
        print(f"round {i + 1}: A plain {results[False]['a']:,.0f} msg/s, agent "
              f"{results[True]['a']:,.0f} ({ratios_a[-1]:.3f}x); B plain "
              f"{results[False]['b']:,.0f} tasks/s, agent {results[True]['b']:,.0f} "
              f"({ratios_b[-1]:.3f}x)", flush=True)
    print(f"workload A with the agent at defaults: median {statistics.median(ratios_a):.3f}x "
          f"plain (min {min(ratios_a):.3f}, max {max(ratios_a):.3f})")
    print(f"workload A, messages per CPU-second of the whole process (steal-proof): median "
          f"{statistics.median(ratios_cpu):.3f}x plain (min {min(ratios_cpu):.3f}, "
          f"max {max(ratios_cpu):.3f})")
    print(f"workload A, messages per CPU-second of the loop thread: median "
          f"{statistics.median(ratios_loop_a):.3f}x plain (min {min(ratios_loop_a):.3f}, "
          f"max {max(ratios_loop_a):.3f})")
    print(f"workload B, tasks per CPU-second of the loop thread: median "
          f"{statistics.median(ratios_loop_b):.3f}x plain (min {min(ratios_loop_b):.3f}, "
          f"max {max(ratios_loop_b):.3f})")
    print(f"workload B with the agent at defaults: median {statistics.median(ratios_b):.3f}x "
          f"plain (min {min(ratios_b):.3f}, max {max(ratios_b):.3f})")
    if not args.skip_census:
        for n in (10_000, 1_000_000):
            c = census(n)
            print(f"census with {n:>9,} live tasks: counts by kind {c['counts_by_kind'] * 1e6:.1f}"
                  f" µs; snapshot without task rows {c['snapshot_no_task_rows'] * 1e3:.2f} ms; "
                  f"snapshot with the 20 oldest tasks {c['snapshot_20_oldest'] * 1e3:.1f} ms",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
