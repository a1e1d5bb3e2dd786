"""Instructions per request on a uvicorn server's event-loop thread, plain vs the agent, by
callgrind (issue 14, "where the cost goes"): the per-request work, free of the shared VM's
clock noise.

    .venv/bin/python benchmarks/server_instructions.py [--requests 1600] [--diff 25]
    .venv/bin/python benchmarks/server_instructions.py --parts defaults,no-task-factory

The FastAPI app of `server_throughput.py` runs under uvicorn (1 worker, uvloop when
installed) inside valgrind, plain and under `introspect run --metrics-port 0` with each part's
configuration (`server_cpu_per_request.PARTS`). After a warm-up the counters are zeroed
(`callgrind_control -z`), a fixed burst is sent, and the counters dumped: start-up and
shut-down are left out. Time-driven parts are switched off in every agent run
(`INTROSPECT_SAMPLING=0`, block threshold 30 s): under valgrind's ~50x slowdown a SIGPROF tick
or a watchdog wake-up comes ~50 times as often per request as in real time, and slow steps
would be reported as blocks. Their real cost is what `server_cpu_per_request.py` measures
(the agent threads' own CPU per request). `--diff N` prints the N functions whose self cost
per request grew most from plain to the first agent configuration. The GC collections by
generation during the burst (`gc.get_stats()`) are counted too: allocations per request do
not depend on the clock either.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server_cpu_per_request import (  # noqa: E402
    PARTS,
    _burst,
    _process_stats,
    bench_workspace,
)
from benchmarks.server_throughput import BIN, _wait_ready, free_port, stop_server  # noqa: E402

QUIET_AGENT = {"INTROSPECT_SAMPLING": "0", "INTROSPECT_BLOCK_THRESHOLD": "30"}


def measure(part: str | None, app_dir: Path, requests: int) -> tuple[Path, list[int]]:
    """Run the server under callgrind; the loop thread's dump of the burst, and the GC
    collections by generation during it (`gc.get_stats()`, read by the shim on SIGUSR2)."""
    name = part or "plain"
    prefix = app_dir / f"cg.{name}"
    port = free_port()
    stats_file = app_dir / f"stats-{name}.jsonl"
    argv = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
            f"--callgrind-out-file={prefix}", str(BIN / "python"), "-m", "uvicorn", "app:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    # this checkout first on the path: a copy of the repository measures its own code
    env = {**os.environ, "INTROSPECT_RUNTIME_DIR": str(app_dir / "rt"),
           "PYTHONPATH": os.pathsep.join([str(app_dir / "shim"), str(ROOT)]),
           "INTROSPECT_BENCH_STATS": str(stats_file)}
    if part is not None:
        extra, off, metrics = PARTS[part]
        env.update({**extra, **QUIET_AGENT, "INTROSPECT_BENCH_OFF": off})
        argv = [str(BIN / "introspect"), "run", *(["--metrics-port", "0"] if metrics else []),
                "--", *argv]
    proc = subprocess.Popen(argv, cwd=app_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_ready(port, proc, timeout=900)
        asyncio.run(_burst(port, 320, 16))
        before = _process_stats(stats_file, [proc.pid], 0, timeout=60).get(proc.pid, {})
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        asyncio.run(_burst(port, requests, 16))
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = _process_stats(stats_file, [proc.pid], 1, timeout=60).get(proc.pid, {})
    finally:
        stop_server(proc, grace=120)
    collections = [b - a for a, b in zip(before.get("gc", []), after.get("gc", []),
                                         strict=False)]
    return Path(f"{prefix}.1-01"), collections  # first dump, thread 1: the event loop's


def total(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary in {dump}")


def self_costs(dump: Path) -> collections.Counter[str]:
    """Self instructions per function (callgrind_annotate), names shortened."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--tree=none", "--auto=no",
                          "--threshold=100", str(dump)], capture_output=True, text=True).stdout
    costs: collections.Counter[str] = collections.Counter()
    for line in out.splitlines():
        match = re.match(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if match is None or "PROGRAM TOTALS" in match.group(2):
            continue
        name = re.sub(r"^.*?Python-3[.\d]+/", "", match.group(2))
        costs[re.sub(r" \[.*\]$", "", name)] += int(match.group(1).replace(",", ""))
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--parts", default="defaults",
                        help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--diff", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    parts = [p for p in args.parts.split(",") if p]
    for part in parts:
        if part not in PARTS:
            parser.error(f"unknown part {part!r}")
    with bench_workspace() as app_dir:
        runs = {name: measure(None if name == "plain" else name, app_dir, args.requests)
                for name in ["plain", *parts]}
        dumps = {name: dump for name, (dump, _gc) in runs.items()}
        base = total(dumps["plain"]) / args.requests
        print(f"{args.requests} requests; loop thread; agent runs with "
              f"{' '.join(f'{k}={v}' for k, v in QUIET_AGENT.items())}")
        print("| configuration | instructions per request | extra | plain / configuration | "
              "GC collections per 1000 requests (gen 0/1/2) |")
        print("|---|---|---|---|---|")
        for name, (dump, collections) in runs.items():
            per_request = total(dump) / args.requests
            per_k = " / ".join(f"{n * 1000 / args.requests:.2f}" for n in collections) or "?"
            print(f"| {name} | {per_request:,.0f} | {per_request - base:+,.0f} | "
                  f"{base / per_request:.3f}× | {per_k} |")
        if args.diff and parts:
            plain, agent = self_costs(dumps["plain"]), self_costs(dumps[parts[0]])
            # Frames above the zeroing point carry the whole burst as "self": drop them.
            ceiling = 0.5 * total(dumps["plain"])
            grown = {name: agent[name] - plain[name] for name in set(plain) | set(agent)
                     if plain[name] < ceiling and agent[name] < ceiling}
            print(f"\nself instructions per request, {parts[0]} minus plain (top {args.diff}):")
            for name, extra in sorted(grown.items(), key=lambda kv: -kv[1])[:args.diff]:
                print(f"{extra / args.requests:+10,.0f}  {name[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
