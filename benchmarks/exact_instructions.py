"""Instructions per message of workload A on the event loop's thread, counted by valgrind's
callgrind: plain, the agent at defaults, exact accounting (the C accelerator and the pure-Python
loop), aiomonitor with hook_task_factory. Counts do not drift with the machine's load the way
this VM's wall clock does (±30 %), so one run per configuration is enough; rerun to check.

    .venv/bin/python benchmarks/exact_instructions.py [--small 5000] [--large 25000]

Each configuration runs twice in its own process under callgrind (`--separate-threads=yes`),
for `small` and `large` messages; the main thread's count difference divided by the message
difference removes start-up (imports, agent start) and leaves the cost of the work itself.
Caveat: instructions are not time (cache misses, branch mispredictions are not weighed); the
wall-clock and loop-thread-CPU ratios are in detectors_overhead.py and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = ["plain", "defaults", "defaults-no-sampling", "exact-c", "exact-python", "aiomonitor"]


async def _child(mode: str, n: int) -> None:
    from benchmarks.workloads import workload_a_messages

    if mode == "defaults-no-sampling":  # the SIGPROF sampler ticks per CPU time: ~50x more
        os.environ["INTROSPECT_SAMPLING"] = "0"  # often per message under valgrind
    if mode in ("defaults", "defaults-no-sampling", "exact-c", "exact-python"):
        import introspect
        from introspect.agent import exact

        introspect.start()
        await asyncio.sleep(0.2)
        if mode.startswith("exact"):
            loop = asyncio.get_running_loop()
            session = exact.ExactSession(loop, 3600, accelerated=mode == "exact-c").start()
            assert session.implementation == mode.split("-")[1], session.implementation
    elif mode == "aiomonitor":
        import aiomonitor

        monitor = aiomonitor.start_monitor(asyncio.get_running_loop(), hook_task_factory=True,
                                           port=0, console_port=0, webui_port=0)
        globals()["_monitor"] = monitor
    await workload_a_messages(n)


def _main_thread_instructions(mode: str, n: int, workdir: str) -> int:
    out = os.path.join(workdir, f"{mode}.{n}.cg")
    env = dict(os.environ, INTROSPECT_RUNTIME_DIR=workdir, PYTHONWARNINGS="ignore")
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                           f"--callgrind-out-file={out}", sys.executable, __file__,
                           "--one", mode, "--n", str(n)],
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} {n}: exit {proc.returncode}: {proc.stderr[-1500:]}")
    main = sorted(glob.glob(out + "-*"))[0]  # thread 1, the event loop's
    for line in Path(main).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {main}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--small", type=int, default=5000)
    p.add_argument("--large", type=int, default=25000)
    p.add_argument("--modes", nargs="*", default=MODES)
    p.add_argument("--one")
    p.add_argument("--n", type=int)
    args = p.parse_args()
    if args.one:
        asyncio.run(_child(args.one, args.n))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    workdir = tempfile.mkdtemp(prefix="bench-cg-")
    per_message = {}
    for mode in args.modes:
        small = _main_thread_instructions(mode, args.small, workdir)
        large = _main_thread_instructions(mode, args.large, workdir)
        per_message[mode] = (large - small) / (args.large - args.small)
        print(f"{mode}: {per_message[mode]:,.0f} instructions/message", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    base = per_message.get("plain")
    print(f"\nworkload A, loop thread, instructions per message ({args.small:,} -> "
          f"{args.large:,} messages)")
    print("| configuration | instructions / message | throughput ratio to plain |")
    print("|---|---|---|")
    for mode, value in per_message.items():
        ratio = f"{base / value:.3f}x" if base else "-"
        print(f"| {mode} | {value:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
