"""What each part of the agent's defaults costs on workload A: callgrind instructions per
message on the event loop's thread, for plain, the defaults, and the defaults with one part
switched off at a time (issue 17). Instruction counts do not drift with the machine's load.

    .venv/bin/python benchmarks/defaults_breakdown.py [--small 5000] [--large 25000]

Each configuration runs twice in its own process (`small` and `large` messages); the loop
thread's count difference divided by the message difference removes start-up. A part's share
is (defaults - defaults without it) / plain.

Two parts run by the clock, and valgrind runs the process ~50x slower, so under it they act
~50x more often per message than natively: the SIGPROF sampler (100 ticks per CPU-second) and
the queue-owner sampling windows (one a second: two methods of asyncio.Queue wrapped for up
to 256 calls or 0.25 s; each swap makes CPython re-specialise the code that uses queues).
For each the script prints its instructions per event (the difference with the part off
divided by the events counted) and what that costs per message at its native rate, from the
loop thread's CPU time per message of plain workload A measured here without valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# mode -> what is switched off (see _child)
MODES = {
    "plain": "no agent",
    "defaults": "nothing",
    "no-sampler": "SIGPROF busy-time sampler (INTROSPECT_SAMPLING=0)",
    "no-select-wrapper": "the blocking watchdog's select() time-stamps",
    "no-watchdog": "the blocking watchdog thread (with its select wrapper and lints)",
    "no-lints": "every lint (INTROSPECT_LINTS=-name,...)",
    "no-gc-callback": "the GC pause callback",
    "no-queue-sampling": "queue-owner sampling (get_nowait/put_nowait wrapped in windows)",
    "no-discovery-hooks": "queue and executor discovery (class-level constructor wrappers)",
    "core": "sampler, watchdog and GC callback: factory, lag probe, server only",
}
SAMPLES_PER_CPU_SECOND = 100  # busy.SAMPLE_INTERVAL = 0.01


async def _child(mode: str, n: int) -> dict:
    from benchmarks.workloads import workload_a_messages

    if mode == "plain":
        await workload_a_messages(n)
        return {}
    if mode in ("no-sampler", "core"):
        os.environ["INTROSPECT_SAMPLING"] = "0"
    if mode == "no-lints":
        from introspect.agent.lints import default_lints

        os.environ["INTROSPECT_LINTS"] = ",".join("-" + lint.name for lint in default_lints())
    import introspect

    agent = introspect.start()
    await asyncio.sleep(0.2)
    blocking = agent.blocking
    deadline = time.monotonic() + 60
    while blocking is not None and blocking._clock is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the watchdog wraps select() at its first tick
    if mode == "no-select-wrapper" and blocking is not None and blocking._clock is not None:
        blocking._clock.uninstall()
        blocking._clock = None  # same loop: the watchdog does not wrap it again
    if mode in ("no-watchdog", "core") and blocking is not None:
        blocking.stop()
    if mode in ("no-gc-callback", "core"):
        agent.gc.uninstall()
    if mode == "no-discovery-hooks":
        agent._hooks.uninstall()
    if mode == "no-queue-sampling" and agent.queues.queue_calls is not None:
        agent.queues.queue_calls.stop()
    sampler, calls = agent.sampler, agent.queues.queue_calls
    before = sampler.samples if sampler is not None else 0
    opened = calls.windows if calls is not None else 0
    await workload_a_messages(n)
    return {"samples": (sampler.samples if sampler is not None else 0) - before,
            "windows": (calls.windows if calls is not None else 0) - opened}


def _run(mode: str, n: int, workdir: str) -> tuple[int, dict]:
    out = os.path.join(workdir, f"{mode}.{n}.cg")
    env = dict(os.environ, INTROSPECT_RUNTIME_DIR=workdir, PYTHONWARNINGS="ignore")
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                           f"--callgrind-out-file={out}", sys.executable, __file__,
                           "--one", mode, "--n", str(n)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} {n}: exit {proc.returncode}: {proc.stderr[-1500:]}")
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    main = sorted(glob.glob(out + "-*"))[0]  # thread 1, the event loop's
    for line in Path(main).read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]), facts
    raise SystemExit(f"no totals in {main}")


def _native_cpu_per_message(messages: int = 100_000) -> float:
    """Loop-thread CPU seconds per message of plain workload A, without valgrind."""
    from benchmarks.workloads import workload_a_messages

    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        asyncio.run(workload_a_messages(messages))
        best = min(best, (time.thread_time() - started) / messages)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--small", type=int, default=5000)
    p.add_argument("--large", type=int, default=25000)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--one")
    p.add_argument("--n", type=int)
    args = p.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(_child(args.one, args.n))))
        return 0
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    workdir = tempfile.mkdtemp(prefix="bench-breakdown-")
    per_message: dict[str, float] = {}
    ticks: dict[str, float] = {}
    windows: dict[str, float] = {}
    try:
        for mode in modes:
            small, facts_small = _run(mode, args.small, workdir)
            large, facts_large = _run(mode, args.large, workdir)
            span = args.large - args.small
            per_message[mode] = (large - small) / span
            ticks[mode] = (facts_large.get("samples", 0) - facts_small.get("samples", 0)) / span
            windows[mode] = (facts_large.get("windows", 0) - facts_small.get("windows", 0)) / span
            print(f"{mode}: {per_message[mode]:,.0f} instructions/message, "
                  f"{ticks[mode] * 1000:.2f} sampler ticks per 1000 messages", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    plain, defaults = per_message.get("plain"), per_message.get("defaults")
    print(f"\nworkload A, loop thread, instructions per message ({args.small:,} -> "
          f"{args.large:,} messages)")
    print("| configuration | switched off | instructions / message | ratio to plain | "
          "part's share of plain |")
    print("|---|---|---|---|---|")
    for mode, value in per_message.items():
        ratio = f"{plain / value:.3f}x" if plain else "-"
        share = f"{(defaults - value) / plain * 100:+.2f} %" if plain and defaults and \
            mode not in ("plain", "defaults") else ""
        print(f"| {mode} | {MODES[mode]} | {value:,.0f} | {ratio} | {share} |")
    from introspect.agent.collectors.queue_owners import WINDOW_PERIOD

    cpu = _native_cpu_per_message() if defaults else 0.0
    # (part, mode without it, events per message under valgrind, native events per second)
    timed = [("sampler tick", "no-sampler", ticks.get("defaults"), SAMPLES_PER_CPU_SECOND),
             ("queue-owner sampling window", "no-queue-sampling", windows.get("defaults"),
              1 / WINDOW_PERIOD)]
    for label, without, events, native_rate in timed:
        if not (defaults and without in per_message and events):
            continue
        per_event = (defaults - per_message[without]) / events
        native = per_event * native_rate * cpu
        print(f"\n{label}: {per_event:,.0f} instructions each (on the loop thread, effects "
              f"included); {events * 1000:.2f} per 1000 messages under valgrind; natively "
              f"{native_rate * cpu * 1000:.3f} per 1000 messages ({cpu * 1e6:.2f} µs "
              f"loop-thread CPU per message) -> ~{native:,.1f} instructions per message"
              + (f" ({native / plain * 100:.3f} % of plain)" if plain else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
