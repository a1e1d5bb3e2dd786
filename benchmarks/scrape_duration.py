"""Scrape duration with many live tasks: it must not depend on the task count.

    .venv/bin/python benchmarks/scrape_duration.py [--tasks 10000 1000000] [--scrapes 20]

A child process starts the agent with `/metrics` on port 0, creates N idle tasks (all waiting
on one future, so the loop is idle), and the parent scrapes it over HTTP `--scrapes` times. We
report the HTTP round trip (p50/max) and the agent's own collection time per scrape (the
`introspect_agent_collect_seconds` histogram's sum/count), next to a baseline of 0 extra tasks
measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request

CHILD = r"""
import asyncio, sys
import introspect

async def idle(fut):
    await fut

async def main():
    agent = introspect.start(metrics_port=0)
    fut = asyncio.get_running_loop().create_future()
    tasks = [asyncio.ensure_future(idle(fut)) for _ in range(int(sys.argv[1]))]
    await asyncio.sleep(0.5)
    print(agent.extensions["metrics"].port, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def collect_stats(body: str) -> tuple[float, float]:
    total = count = 0.0
    for line in body.splitlines():
        if line.startswith("introspect_agent_collect_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("introspect_agent_collect_seconds_count"):
            count = float(line.split()[-1])
    return total, count


def measure(n: int, scrapes: int) -> dict[str, float]:
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(n)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(child.stdout.readline())
        setup = time.perf_counter() - started
        url = f"http://127.0.0.1:{port}/metrics"
        latencies = []
        body = ""
        for _ in range(scrapes):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read().decode()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.05)
        total, count = collect_stats(body)
        live = [float(line.split()[-1]) for line in body.splitlines()
                if line.startswith('python_asyncio_tasks{kind="__main__.idle"}')]
        assert live == ([float(n)] if n else []), live  # the scrape saw every task
        return {"setup_s": setup, "p50_ms": statistics.median(latencies) * 1000,
                "max_ms": max(latencies) * 1000, "collect_ms": total / count * 1000,
                "bytes": len(body)}
    finally:
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sizes = [0, *args.tasks]
    rows: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    for _round in range(args.rounds):
        for n in sizes:  # alternating sizes, round after round
            rows[n].append(measure(n, args.scrapes))
    print("| live tasks | scrape p50 ms | scrape max ms | agent collect ms/scrape | body bytes |")
    print("|---|---|---|---|---|")
    for n in sizes:
        r = rows[n]
        print(f"| {n:,} | {statistics.median(x['p50_ms'] for x in r):.2f} "
              f"| {max(x['max_ms'] for x in r):.2f} "
              f"| {statistics.median(x['collect_ms'] for x in r):.3f} "
              f"| {int(r[0]['bytes']):,} |")


if __name__ == "__main__":
    main()
