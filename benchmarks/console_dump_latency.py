"""How fast `dump` (agent vs py-spy) and a console evaluation answer while the target's loop is
idle, blocked in Python code, or saturated by switch-heavy work (workload A); and what the
console's stdout proxy costs a program that prints.

    .venv/bin/python benchmarks/console_dump_latency.py [--runs 7]

Each scenario runs in a fresh target process; the three probes alternate within it, so the
ratios compare like with like. Results: benchmarks/results/console.md.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from introspect.agent.console.output import ConsoleAwareStream
from introspect.client.connection import Client
from introspect.console.client import ConsoleClient
from introspect.errors import ConnectError
from introspect.profiling import pyspy
from introspect.protocol import discovery

TARGET = """
import asyncio, sys, introspect
sys.path.insert(0, {bench!r})
from workloads import workload_a

async def spin():
    while True:
        pass

async def main():
    introspect.start(console=True)
    print("ready", flush=True)
    if {scenario!r} == "blocked":
        await spin()
    elif {scenario!r} == "saturated":
        while True:
            await workload_a(duration=3600)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def timed(fn) -> float | None:
    started = time.perf_counter()
    try:
        fn()
    except ConnectError:
        return None  # did not answer within the deadline
    return time.perf_counter() - started


def agent_dump(pid: int) -> None:
    with Client(str(pid), timeout=2.0) as client:
        client.dump(timeout=2.0)


def console_eval(pid: int) -> None:
    with Client(str(pid), timeout=2.0) as client:
        console = ConsoleClient(client, out=io.StringIO())
        console.open()
        console.client.sock.settimeout(2.0)
        console.execute("1 + 1")


def summary(values: list[float | None]) -> str:
    answered = [v for v in values if v is not None]
    if not answered:
        return f"no answer in {len(values)} tries (2 s deadline)"
    text = f"median {statistics.median(answered) * 1000:.1f} ms, max {max(answered) * 1000:.1f} ms"
    missed = len(values) - len(answered)
    return text + (f", {missed}/{len(values)} unanswered" if missed else "")


def scenario(name: str, runs: int) -> None:
    source = textwrap.dedent(TARGET.format(bench=str(Path(__file__).parent), scenario=name))
    proc = subprocess.Popen([sys.executable, "-c", source], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        while not discovery.socket_path(proc.pid).exists():
            time.sleep(0.05)
        time.sleep(1.0)  # let the scenario reach its steady state
        results: dict[str, list[float | None]] = {"agent dump": [], "py-spy dump": [],
                                                  "console 1+1": []}
        for _ in range(runs):  # alternate the probes
            results["agent dump"].append(timed(lambda: agent_dump(proc.pid)))
            results["py-spy dump"].append(timed(lambda: pyspy.dump(proc.pid)))
            if name == "blocked":
                results["console 1+1"].append(None)  # by design: code runs on the loop
            else:
                results["console 1+1"].append(timed(lambda: console_eval(proc.pid)))
        for probe, values in results.items():
            print(f"| {name} | {probe} | {summary(values)} |")
    finally:
        proc.kill()
        proc.wait()


def proxy_cost(rounds: int = 5, lines: int = 200_000) -> None:
    """print() of short lines, directly vs through the console's proxy (which is in place
    only while a console session or evaluation is alive), into memory and into a file."""
    for label, make in (("StringIO", io.StringIO),
                        ("a file (/dev/null)", lambda: open(os.devnull, "w"))):
        ratios, extra = [], []
        for _ in range(rounds):
            times = []
            for wrap in (False, True):
                sink = make()
                stream = ConsoleAwareStream(sink) if wrap else sink
                started = time.perf_counter()
                for i in range(lines):
                    print("line", i, file=stream)
                times.append(time.perf_counter() - started)
                sink.close()
            ratios.append(times[1] / times[0])
            extra.append((times[1] - times[0]) / lines)
        print(f"| stdout proxy | print() to {label}, proxied / direct | median ratio "
              f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}), "
              f"+{statistics.median(extra) * 1e9:.0f} ns per print |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print("| loop | probe | latency |\n|---|---|---|")
    for name in ("idle", "blocked", "saturated"):
        scenario(name, args.runs)
    proxy_cost()


if __name__ == "__main__":
    main()
