"""How fast does the agent answer while the host's loop is saturated or blocked? (FINDINGS.md:
an agent thread may starve for the GIL behind a loop doing frequent zero-timeout epolls.)

    .venv/bin/python benchmarks/attach_gil.py [--requests 30]

For each host mode (idle, saturated = workload A, blocked-sleep, blocked-busy) it starts the
host under `introspect run`, connects once, then times `--requests` snapshot requests (and
handshake+snapshot on a fresh connection) and prints p50/max in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.attach_workloads import HOST_MODES
from introspect.client.connection import Client
from tests.support.procs import AgentProcess

MODES = ["idle", "saturated", "blocked-sleep", "blocked-busy"]


def measure(mode: str, requests: int, top: int) -> dict[str, list[float]]:
    proc = AgentProcess([sys.executable, "-m", "introspect", "run", "--", sys.executable,
                         "-c", HOST_MODES, mode])
    with proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        time.sleep(0.5)  # let the workload reach steady state (not a test: a benchmark)
        same, fresh = [], []
        with Client(str(proc.pid), timeout=60) as client:
            for _ in range(requests):
                started = time.perf_counter()
                client.snapshot(top_tasks=top)
                same.append(time.perf_counter() - started)
        for _ in range(max(3, requests // 3)):
            started = time.perf_counter()
            with Client(str(proc.pid), timeout=60) as client:
                client.snapshot(top_tasks=top)
            fresh.append(time.perf_counter() - started)
    return {"snapshot": same, "connect+snapshot": fresh}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    os.environ.setdefault("INTROSPECT_RUNTIME_DIR", tempfile.mkdtemp(prefix="introspect-bench-"))
    print("| host loop | request | n | p50 ms | p90 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        for what, samples in measure(mode, args.requests, args.top).items():
            ms = sorted(x * 1000 for x in samples)
            p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
            print(f"| {mode} | {what} | {len(ms)} | {statistics.median(ms):.1f} | "
                  f"{p90:.1f} | {ms[-1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
