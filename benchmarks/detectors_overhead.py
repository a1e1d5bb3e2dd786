"""Cost of the blocking detector + busy-time sampling (defaults) and of exact accounting, on
workload A, next to what a user would otherwise pick (asyncio debug mode, aiomonitor with
hook_task_factory=True); workload B with the agent's task factory; census cost at N tasks.

    .venv/bin/python benchmarks/detectors_overhead.py [--rounds 5] [--duration 2]
    .venv/bin/python benchmarks/detectors_overhead.py --census 10000 1000000

Each configuration runs in its own fresh process; configurations alternate within each round
and the table reports medians and the ratio to the plain median of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.workloads import workload_a, workload_b

MODES_A = ["plain", "defaults", "exact", "exact-python", "debug", "aiomonitor"]
MODES_B = ["plain", "defaults"]


async def _setup(mode: str) -> None:
    if mode in ("defaults", "exact", "exact-python"):
        import introspect

        agent = introspect.start()
        await asyncio.sleep(0.3)  # the lag probe beats; the sampler arms on the loop thread
        assert agent.sampler is not None and agent.sampler.active, agent.sampler
        if mode == "exact":  # the C accelerator when built (it is, after `make setup`)
            agent.exact.start(600)
        elif mode == "exact-python":
            from introspect.agent.exact import ExactSession

            ExactSession(asyncio.get_running_loop(), 600, accelerated=False).start()
    elif mode == "aiomonitor":
        import aiomonitor

        monitor = aiomonitor.start_monitor(asyncio.get_running_loop(), hook_task_factory=True,
                                           port=0, console_port=0, webui_port=0)
        globals()["_monitor"] = monitor


async def _one(mode: str, workload: str, duration: float) -> float:
    await _setup(mode)
    if workload == "A":
        return await workload_a(duration)
    return await workload_b()


async def _census(n: int) -> dict[str, float]:
    import introspect

    agent = introspect.start()
    never = asyncio.Event()
    tasks = [asyncio.ensure_future(never.wait()) for _ in range(n)]
    await asyncio.sleep(0.5)

    def timed(fn, repeat: int = 5) -> float:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    out = {
        "live_counts (metrics path)": timed(agent.tasks.counts),
        "snapshot top_tasks=0": timed(lambda: agent.snapshot(top_tasks=0)),
        "snapshot top_tasks=20": timed(lambda: agent.snapshot(top_tasks=20), repeat=3),
    }
    never.set()
    await asyncio.gather(*tasks)
    return out


def _child(args: argparse.Namespace) -> None:
    if args.census_one:
        print(json.dumps(asyncio.run(_census(args.census_one))))
        return
    debug = args.one == "debug"
    print(json.dumps(asyncio.run(_one(args.one, args.workload, args.duration), debug=debug)))


def _run(extra: list[str], env: dict[str, str]) -> object:
    out = subprocess.run([sys.executable, __file__, *extra], capture_output=True, text=True,
                         env=env, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{extra}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--census", type=int, nargs="*")
    p.add_argument("--one")
    p.add_argument("--workload", default="A")
    p.add_argument("--census-one", type=int)
    args = p.parse_args()
    if args.one or args.census_one:
        _child(args)
        return
    env = dict(os.environ, INTROSPECT_RUNTIME_DIR=tempfile.mkdtemp(prefix="bench-rt-"),
               PYTHONWARNINGS="ignore")
    if args.census:
        print("| live tasks | " + " | ".join(["live counts (metrics path)",
                                              "snapshot top_tasks=0",
                                              "snapshot top_tasks=20"]) + " |")
        print("|---|---|---|---|")
        for n in args.census:
            res = _run(["--census-one", str(n)], env)
            print(f"| {n:,} | " + " | ".join(f"{v * 1000:.3f} ms" for v in res.values()) + " |")
        return
    for workload, modes in (("A", MODES_A), ("B", MODES_B)):
        results: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                value = _run(["--one", mode, "--workload", workload, "--duration",
                              str(args.duration)], env)
                results[mode].append(float(value))  # type: ignore[arg-type]
        base = statistics.median(results["plain"])
        unit = "messages/s" if workload == "A" else "tasks/s"
        print(f"\nworkload {workload} ({args.rounds} alternating rounds, median {unit})")
        print("| configuration | median | ratio to plain | runs |")
        print("|---|---|---|---|")
        for mode in modes:
            med = statistics.median(results[mode])
            runs = ", ".join(f"{v:,.0f}" for v in results[mode])
            print(f"| {mode} | {med:,.0f} | {med / base:.3f}x | {runs} |")


if __name__ == "__main__":
    main()
