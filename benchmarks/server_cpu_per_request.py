"""Where the agent's cost goes in a real server: CPU time of the server per request, plain vs
the agent with one part switched off at a time (issue 14, "where the cost goes").

    .venv/bin/python benchmarks/server_cpu_per_request.py --pairs 6 --requests 12000
    .venv/bin/python benchmarks/server_cpu_per_request.py --parts defaults,no-sampling

The server is `benchmarks/server_throughput.py`'s FastAPI app under uvicorn (1 worker by
default). Each pair starts it plain and under `introspect run --metrics-port 0` with the
part's configuration, alternating (the order flips every pair), warms it up, then sends a
fixed number of requests over 16 keep-alive connections and reads the CPU time every thread
of the server's processes spent meanwhile (`/proc/PID/task/TID/schedstat`, nanoseconds).
CPU per request is steadier than requests per second on a shared 2-core VM: it does not
move with what else runs, only with what the server does per request.

Parts an option switches off use it (`INTROSPECT_SAMPLING=0`, `INTROSPECT_LINTS`, no
metrics port). The others are switched off by a `sitecustomize` this script puts on
PYTHONPATH (`introspect run` chains to it before the agent starts), which replaces one
part's start with a no-op: benchmark-only, never a product path. The same module counts
garbage collections per generation (SIGUSR2 writes `gc.get_stats()`), plain and agent alike.

Reported per part: median over pairs of (agent CPU µs per request) / (plain), the loop
thread's and the other threads' share of the difference, gen-0/1/2 collections per 1000
requests, req/s as a side figure, and each agent thread's own CPU per request with how often
it went to sleep per second (voluntary context switches: its wake-ups, and its waits for the
GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server_throughput import (  # noqa: E402
    APP,
    REQUEST,
    _wait_ready,
    free_port,
    start_server,
    stop_server,
)

ALL_LINTS = ("loop_blocked,task_never_yields,self_waking_busy_loop,exception_never_retrieved,"
             "coroutine_never_awaited,task_kind_leak,unbounded_queue_growing,executor_saturated")

# part -> (extra environment, shim switches, metrics port on)
PARTS: dict[str, tuple[dict[str, str], str, bool]] = {
    "defaults": ({}, "", True),
    "no-metrics-port": ({}, "", False),
    "no-sampling": ({"INTROSPECT_SAMPLING": "0"}, "", True),
    "no-lints": ({"INTROSPECT_LINTS": ",".join("-" + n for n in ALL_LINTS.split(","))}, "",
                 True),
    "no-host-log": ({"INTROSPECT_HOST_LOG": "off"}, "", True),
    "no-watchdog": ({}, "watchdog", True),
    # the watchdog's wake-ups without what it drives once a second (lints, waits, owners,
    # history: run once at start, then never; no queue-call windows)
    "no-watchdog-duties": ({}, "watchdog-duties", True),
    "no-task-factory": ({}, "tasks", True),
    "no-lag-probe": ({}, "probe", True),
    "no-gc-callback": ({}, "gc", True),
    "no-discovery-hooks": ({}, "discovery", True),
    "no-agent-server": ({}, "server", True),
    "only-task-factory": ({"INTROSPECT_SAMPLING": "0"},
                          "watchdog,probe,gc,discovery,server", False),
    "imported-not-started": ({}, "start", False),
}

SHIM = r'''
"""Benchmark-only (benchmarks/server_cpu_per_request.py): switch agent parts off, count GCs."""
import os, sys

def _off(parts):
    import introspect
    from introspect.agent import blocking, core
    from introspect.agent.collectors import discovery_hooks, gcstats, loop
    from introspect.agent.server import lifecycle
    if "start" in parts:
        import introspect.agent.core, introspect.metrics.default_registry  # what start() imports
        introspect.start = lambda **kw: None
    if "watchdog" in parts:
        blocking.BlockingDetector._run = lambda self: None
    if "watchdog-duties" in parts:
        from introspect.agent.collectors import queue_owners
        blocking.LINT_PERIOD = 1e9
        queue_owners.QueueCallSampler.tick = lambda self, now: None
    if "tasks" in parts:
        core.instrument_loop = lambda loop, tasks, on_error: False
    if "probe" in parts:
        loop.LoopCollector.attach = lambda self, the_loop: None
    if "gc" in parts:
        gcstats.GcCollector.install = lambda self: None
    if "discovery" in parts:
        discovery_hooks.DiscoveryHooks.install = lambda self: None
    if "server" in parts:
        lifecycle.AgentServer.start = lambda self: None

def _stats_on_signal(path):
    import gc, json, signal, threading, time
    def write(signum, frame):
        with open(path, "a") as out:
            out.write(json.dumps({"pid": os.getpid(), "time": time.monotonic(),
                                  "gc": [g["collections"] for g in gc.get_stats()],
                                  "threads": {t.native_id: t.name
                                              for t in threading.enumerate()}}) + "\n")
    signal.signal(signal.SIGUSR2, write)

_parts = set(filter(None, os.environ.get("INTROSPECT_BENCH_OFF", "").split(",")))
if _parts:
    _off(_parts)
if os.environ.get("INTROSPECT_BENCH_STATS"):
    _stats_on_signal(os.environ["INTROSPECT_BENCH_STATS"])
'''


@contextlib.contextmanager
def bench_workspace() -> Iterator[Path]:
    """A temporary folder with the app, a private runtime dir and the parts-switching shim."""
    with tempfile.TemporaryDirectory(prefix="introspect-bench-") as tmp:
        app_dir = Path(tmp)
        (app_dir / "app.py").write_text(APP)
        (app_dir / "rt").mkdir(mode=0o700)
        (app_dir / "shim").mkdir()
        (app_dir / "shim" / "sitecustomize.py").write_text(SHIM)
        yield app_dir


@dataclass
class Run:
    requests: int
    seconds: float
    cpu_ns: dict[str, int] = field(default_factory=dict)  # "loop" / a thread's name -> ns
    sleeps: dict[str, int] = field(default_factory=dict)  # voluntary context switches
    gc: list[int] = field(default_factory=lambda: [0, 0, 0])

    @property
    def us_per_request(self) -> float:
        return sum(self.cpu_ns.values()) / 1000 / self.requests

    def part_us(self, name: str) -> float:
        if name == "other":  # every thread but the loop's (named or not)
            return sum(ns for role, ns in self.cpu_ns.items() if role != "loop") / 1000 / \
                self.requests
        return self.cpu_ns.get(name, 0) / 1000 / self.requests


def _thread_times(pids: list[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """(pid, tid) -> (CPU ns, voluntary context switches: how often it slept) for every thread
    of `pids`."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except OSError:
                continue
            switches = sum(int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("voluntary_ctxt_switches"))
            out[(pid, int(tid))] = (ns, switches)
    return out


def _server_pids(root: int) -> list[int]:
    import psutil

    try:
        proc = psutil.Process(root)
        return [root, *(child.pid for child in proc.children(recursive=True))]
    except psutil.Error:
        return [root]


async def _client(port: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
    finally:
        writer.close()


async def _burst(port: int, requests: int, connections: int) -> None:
    each = requests // connections
    await asyncio.gather(*(_client(port, each) for _ in range(connections)))


def _process_stats(stats_file: Path, pids: list[int], before: int, timeout: float = 2.0
                   ) -> dict[int, dict]:
    """Ask every server process for its GC counts and thread names (SIGUSR2), wait for them;
    uvicorn's supervisor of `--workers N` handles signals itself and does not answer."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGUSR2)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stats_file.read_text().splitlines()[before:] if stats_file.exists() else []
        got = {entry["pid"]: entry for entry in map(json.loads, lines)}
        if set(pids) <= set(got):
            return got
        time.sleep(0.02)
    return got


def one_run(server: str, part: str | None, app_dir: Path, requests: int, warmup: int,
            connections: int) -> Run:
    port = free_port()
    stats_file = app_dir / f"stats-{port}.jsonl"
    proc, _ = start_server(server, part or "plain", app_dir, port=port,
                           extra_env={"INTROSPECT_BENCH_STATS": str(stats_file)})
    try:
        _wait_ready(port, proc)
        asyncio.run(_burst(port, warmup, connections))  # every worker up, imports done
        pids = _server_pids(proc.pid)
        stats_before = _process_stats(stats_file, pids, 0)
        lines = len(stats_file.read_text().splitlines()) if stats_file.exists() else 0
        before = _thread_times(pids)
        started = time.perf_counter()
        asyncio.run(_burst(port, requests, connections))
        seconds = time.perf_counter() - started
        after = _thread_times(pids)
        stats_after = _process_stats(stats_file, pids, lines)
        done = requests // connections * connections
        run = Run(requests=done, seconds=seconds)
        for (pid, tid), (ns, switches) in after.items():
            ns0, switches0 = before.get((pid, tid), (0, 0))
            names = stats_after.get(pid, {}).get("threads", {})
            role = "loop" if pid == tid else names.get(str(tid), "unnamed")
            run.cpu_ns[role] = run.cpu_ns.get(role, 0) + ns - ns0
            run.sleeps[role] = run.sleeps.get(role, 0) + switches - switches0
        for pid in pids:
            if pid in stats_before and pid in stats_after:
                for gen in range(3):
                    run.gc[gen] += stats_after[pid]["gc"][gen] - stats_before[pid]["gc"][gen]
        return run
    finally:
        stop_server(proc)


def _median(runs: list[Run], measure: Callable[[Run], float]) -> float:
    return statistics.median(measure(run) for run in runs)


def row(part: str, plain: list[Run], agent: list[Run]) -> str:
    """One table row: medians over the pairs, the ratio's spread, where the extra CPU went."""
    ratios = [a.us_per_request / p.us_per_request for p, a in zip(plain, agent, strict=True)]
    loop_extra = _median(agent, lambda r: r.part_us("loop")) - \
        _median(plain, lambda r: r.part_us("loop"))
    other_extra = _median(agent, lambda r: r.part_us("other")) - \
        _median(plain, lambda r: r.part_us("other"))

    def gc_text(runs: list[Run]) -> str:
        return "/".join(f"{_median(runs, lambda r, g=g: 1000 * r.gc[g] / r.requests):.1f}"
                        for g in range(3))

    threads = sorted({role for r in agent for role in r.cpu_ns} - {"loop"})
    by_thread = ", ".join(
        f"{name.removeprefix('introspect-')} "
        f"{_median(agent, lambda r, n=name: r.part_us(n)):.1f} "
        f"({_median(agent, lambda r, n=name: r.sleeps.get(n, 0) / r.seconds):.0f}/s)"
        for name in threads)
    return (f"| {part} | {_median(plain, lambda r: r.us_per_request):.1f} → "
            f"{_median(agent, lambda r: r.us_per_request):.1f} | "
            f"**{statistics.median(ratios):.3f}×** ({min(ratios):.3f}–{max(ratios):.3f}) | "
            f"{loop_extra:+.1f} + {other_extra:+.1f} | {gc_text(plain)} → {gc_text(agent)} | "
            f"{_median(plain, lambda r: r.requests / r.seconds):.0f} → "
            f"{_median(agent, lambda r: r.requests / r.seconds):.0f} | {by_thread or '-'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--requests", type=int, default=12000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--server", default="uvicorn-1",
                        choices=["uvicorn-1", "uvicorn-3", "gunicorn-3"])
    parser.add_argument("--parts", default="defaults",
                        help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--raw", action="store_true", help="print every run")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    for part in parts:
        if part not in PARTS:
            parser.error(f"unknown part {part!r}")
    with bench_workspace() as app_dir:
        print(f"server {args.server}, {args.requests} requests per run, {args.pairs} pairs "
              "per part, CPU = every thread of the server's processes")
        print("| agent configuration | CPU µs/request plain → agent | median ratio agent/plain "
              "(min–max) | extra µs: loop thread + other threads | GC gen0/1/2 per 1k req "
              "plain → agent | req/s plain → agent | agent threads: µs/request (sleeps/s) |")
        print("|---|---|---|---|---|---|---|")
        for part in parts:
            plain: list[Run] = []
            agent: list[Run] = []
            for pair in range(args.pairs):
                order = (None, part) if pair % 2 == 0 else (part, None)
                got = {name: one_run(args.server, name, app_dir, args.requests, args.warmup,
                                     args.connections) for name in order}
                plain.append(got[None])
                agent.append(got[part])
                if args.raw:
                    print(f"  {part} pair {pair}: plain {got[None].us_per_request:.1f} µs "
                          f"{got[None].cpu_ns} gc {got[None].gc} | agent "
                          f"{got[part].us_per_request:.1f} µs {got[part].cpu_ns} "
                          f"gc {got[part].gc}", flush=True)
            print(row(part, plain, agent), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
