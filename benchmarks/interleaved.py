"""Workloads A and B in two long-lived processes, plain and under the agent, driven in
interleaved bursts (issue 17: ratios that hold on a shared VM).

    .venv/bin/python benchmarks/interleaved.py [--rounds 6] [--pairs 10] [--burst 0.5]
        [--matched-seeds] [--control | --imports-only [agent|stdlib] | --core-only |
         --stop PART,...]
        [--only A|B]

Back-to-back fresh processes of two seconds each drifted by ±10-30 % per pair on the 2-core VM
(other work, steal time, frequency): more than the few per cent to measure. Here both processes
start once, warm up, then take turns, strictly alternating: A for `--burst` seconds in one, then
in the other, then B for `--tasks` tasks likewise, and so on. Every burst follows one of the
other process's, never one of its own: a process that runs twice in a row is warmer the second
time (3-5 % of A on this VM), and the earlier design (the order flipped every pair) gave one
process more such runs than the other, a bias of ~2 % in its own A/A control (session 9). Each
burst of the process that follows is compared with the geometric mean of the leader's bursts of
the same workload just before and just after it, so linear drift cancels; which process leads
alternates by round. The process not measured waits on its stdin, idle (the agent's threads
wake as they would in an idle service). Both processes count their own time paused in garbage
collection (a `gc.callbacks` pair, in both alike).

The bias of the method, reported with the figures: clock-driven work that lands in the idle half
(a beat that fires while the process waits, or work a burst deferred) does not slow a burst, as
it would in a saturated service. So each process's CPU while idle is reported too (CPU-seconds
per second waited): the agent's minus plain's bounds what the bursts may miss.

Adjacent bursts do not cancel what differs between the two processes themselves (hash seeds,
memory layout: two runs of 40 pairs each in one process pair gave workload A medians of 0.925×
and 1.048× minutes apart on the quiet VM). So `--rounds` fresh process pairs are started one
after the other, each driven for `--pairs` burst pairs.

Reported per figure: the median of all pairs' ratios agent/plain with its interquartile range,
and the median of each process pair's median with a 90 % interval from resampling the rounds.
`--stop PART,...` stops parts of the started agent (bisecting what costs), `--only A|B` drives
one workload, `--raw FILE` keeps every burst's figures as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent

WORKER = r'''
import asyncio, gc, json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.workloads import workload_a, workload_b
paused = [0.0, 0.0]
def on_gc(phase, info):
    if phase == "start":
        paused[1] = time.perf_counter()
    else:
        paused[0] += time.perf_counter() - paused[1]
async def main():
    if {imports_only!r} == "agent":  # the modules a settled agent has imported, not started
        import introspect.agent.core, introspect.metrics.default_registry
        import introspect.agent.server.clients, introspect.agent.snapshot_builder
    elif {imports_only!r} == "stdlib":  # as many modules and objects, none of ours: a control
        import email.mime.multipart, http.server, xml.dom.minidom, logging.handlers, decimal
        import urllib.request, statistics, argparse, unittest, csv, sqlite3, zipfile, tarfile
        import difflib, pprint, dataclasses, pydoc
    elif {agent}:
        import introspect
        introspect.start()
        from benchmarks.workloads import agent_settled
        await agent_settled()  # the state a service runs in (~0.2 s after start)
        agent = introspect.get_agent()
        for part in {stop!r}:  # parts stopped once settled (--stop, --core-only)
            if part == "sampler": agent.sampler.stop()
            elif part == "watchdog": agent.blocking.stop()
            elif part == "clock" and agent.blocking._clock: agent.blocking._clock.uninstall()
            elif part == "gc": agent.gc.uninstall()
            elif part == "hooks": agent._hooks.uninstall()
            elif part == "windows" and agent.queues.queue_calls:  # gone with "hooks"
                agent.queues.queue_calls.stop()
    gc.callbacks.append(on_gc)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    idle_cpu, idle_wall = time.process_time(), time.perf_counter()
    while line := await reader.readline():
        what, amount = line.split()
        cpu, loop_cpu, gc_before = time.process_time(), time.thread_time(), paused[0]
        idle = (cpu - idle_cpu) / (time.perf_counter() - idle_wall)
        if what == b"A":
            rate = await workload_a(float(amount))
            work = rate * float(amount)
        else:
            rate = await workload_b(int(amount))
            work = int(amount)
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        print(json.dumps({{"rate": rate, "per_cpu": work / cpu, "per_loop_cpu": work / loop_cpu,
                          "gc_paused": paused[0] - gc_before, "idle_cpu": idle}}), flush=True)
        idle_cpu, idle_wall = time.process_time(), time.perf_counter()
asyncio.run(main())
'''

# (label, workload, key in a burst's result, goal: agent/plain at least; for GC at most)
FIGURES = [
    ("workload A, wall clock", "A", "rate", 0.99),
    ("workload A, per loop-thread CPU", "A", "per_loop_cpu", 0.99),
    ("workload A, per whole-process CPU", "A", "per_cpu", 0.98),
    ("workload B (task churn), wall clock", "B", "rate", 0.90),
    ("workload B (task churn), per loop-thread CPU", "B", "per_loop_cpu", 0.90),
    ("workload B, time paused in GC (at most)", "B", "gc_paused", 1.10),
]


# --stop: what each name stops once the agent has settled (the rest runs at defaults)
PARTS = {
    "sampler": "the SIGPROF busy-time sampler",
    "watchdog": "the blocking watchdog (its thread, select() time-stamps, lints, queue windows)",
    "clock": "the watchdog's select() time-stamps only",
    "gc": "the GC pause timer",
    "hooks": "the queue/executor discovery hooks (and with them the queue windows)",
    "windows": "the queue-owner sampling windows only",
}
CORE = ("sampler", "watchdog", "gc", "hooks")


class Worker:
    def __init__(self, agent: bool, hash_seed: int | None = None,
                 imports_only: str = "", stop: tuple[str, ...] = ()) -> None:
        code = WORKER.format(root=str(ROOT), agent=agent, imports_only=imports_only,
                             stop=tuple(stop))
        env = dict(os.environ)
        if hash_seed is not None:
            env["PYTHONHASHSEED"] = str(hash_seed)
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, workload: str, amount: float) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{workload} {amount}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited: {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


def interleave(pairs: int, burst: float, tasks: int, rounds: int = 1,
               progress: bool = True, matched_seeds: bool = False,
               control: bool = False, imports_only: str = "",
               stop: tuple[str, ...] = (), only: str = "",
               raw: TextIO | None = None) -> dict[str, list[float]]:
    """Ratios agent/plain per pair for every figure in FIGURES, keyed by label; `rounds`
    fresh process pairs of `pairs` pairs each. `control`: the "agent" process runs plain too
    (an A/A run: the method's own spread and bias); `imports_only`: "agent", it imports what
    the agent imports and does not start it (what its modules alone cost: heap, layout);
    "stdlib", as many standard-library modules and objects instead (the same for any
    library of that size); `stop`: it
    starts the agent, then stops these PARTS once settled; `only`: "A" or "B" drives that
    workload alone (the other's figures are then left out); `raw`: each burst pair's results
    as a JSON line (round, pair, order, workload, both processes' figures)."""
    ratios: dict[str, list[float]] = {label: [] for label, *_ in FIGURES}
    ratios["idle CPU, plain"], ratios["idle CPU, agent"] = [], []
    ratios["agent leads"] = []
    for number in range(rounds):
        _one_round(ratios, pairs, burst, tasks, progress, number + 1 if matched_seeds else None,
                   control, imports_only, stop, only, raw, number)
    ratios["pairs per round"] = [float(pairs)]
    return ratios


def round_medians(values: list[float], pairs: int) -> list[float]:
    """Each process pair's own median: the unit that carries its luck (layout, seeds)."""
    return [statistics.median(values[start:start + pairs])
            for start in range(0, len(values), pairs)]


def resampled_interval(medians: list[float], trials: int = 4000,
                       seed: int = 17) -> tuple[float, float]:
    """5th-95th percentile of the median of round medians when the rounds are resampled with
    replacement: how far the headline could move with other process pairs' luck."""
    rng = random.Random(seed)
    picks = sorted(statistics.median(rng.choices(medians, k=len(medians)))
                   for _ in range(trials))
    return picks[int(0.05 * trials)], picks[int(0.95 * trials) - 1]


def _one_round(ratios: dict[str, list[float]], pairs: int, burst: float, tasks: int,
               progress: bool, hash_seed: int | None, control: bool = False,
               imports_only: str = "", stop: tuple[str, ...] = (), only: str = "",
               raw: TextIO | None = None, number: int = 0) -> None:
    """One process pair. The bursts alternate strictly between the two processes, so every
    burst follows one of the other process's (never one of its own: a process that runs
    twice in a row is warmer the second time, by 3-5 % of A on this VM, and alternating the
    order within pairs gave one process more such runs than the other). Each burst of the
    process that follows is compared with the geometric mean of the leader's bursts of the
    same workload just before and just after it (linear drift cancels). Which process leads
    alternates by round."""
    workers = {flag: Worker(flag and not control and not imports_only, hash_seed,
                            imports_only if flag else "", stop if flag else ())
               for flag in (False, True)}
    amounts = {"A": burst, "B": tasks}
    driven = (only,) if only else ("A", "B")
    lead = number % 2 == 1  # the agent leads in odd rounds
    try:
        for flag in (lead, not lead):  # warm-up: imports, caches, the agent's start-up
            for w in ("A", "B"):
                workers[flag].run(w, amounts[w])
        led: dict[str, list[dict[str, float]]] = {w: [] for w in driven}
        followed: dict[str, list[dict[str, float]]] = {w: [] for w in driven}
        for _ in range(pairs):
            for w in driven:
                led[w].append(workers[lead].run(w, amounts[w]))
                followed[w].append(workers[not lead].run(w, amounts[w]))
        for w in driven:  # the leader's bursts after the last pair's: each one after the other's
            led[w].append(workers[lead].run(w, amounts[w]))
            if w != driven[-1]:
                workers[not lead].run(w, amounts[w])
        for pair in range(pairs):
            if raw is not None:
                for w in driven:
                    raw.write(json.dumps({"round": number, "pair": pair, "agent_leads": lead,
                                          "workload": w, "led": led[w][pair],
                                          "followed": followed[w][pair],
                                          "led_next": led[w][pair + 1]}) + "\n")
            for label, workload, key, _goal in FIGURES:
                if workload in driven:
                    before, after = led[workload][pair][key], led[workload][pair + 1][key]
                    around, middle = (before * after) ** 0.5, followed[workload][pair][key]
                    agent, plain = (around, middle) if lead else (middle, around)
                    ratios[label].append(agent / plain if plain else float("nan"))
            ratios["agent leads"].append(float(lead))
            for flag, name in ((False, "plain"), (True, "agent")):
                bursts = led if flag == lead else followed
                ratios[f"idle CPU, {name}"] += [bursts[w][pair]["idle_cpu"] for w in driven]
        if progress:
            print(f"round {number + 1}: " + ", ".join(
                f"{workload} {statistics.median(ratios[label][-pairs:]):.3f}x"
                for label, workload, *_ in (FIGURES[0], FIGURES[3]) if ratios[label]),
                file=sys.stderr, flush=True)
    finally:
        for worker in workers.values():
            worker.close()


def report(ratios: dict[str, list[float]]) -> None:
    pairs = int(ratios["pairs per round"][0])
    for label, _workload, _key, goal in FIGURES:
        values = ratios[label]
        if len(values) < 2:
            continue  # a workload not driven (--only)
        q1, median, q3 = statistics.quantiles(values, n=4)
        at_most = label.endswith("(at most)")
        meets = median <= goal if at_most else median >= goal
        print(f"  {label:46} {median:.3f}x (IQR {q1:.3f}-{q3:.3f}, {len(values)} pairs)"
              f"   goal {'<=' if at_most else '>='} {goal:.2f}x   "
              f"{'meets' if meets else 'MISSES'}")
    rounds = len(ratios[FIGURES[0][0]]) // pairs
    if rounds >= 4:
        print(f"  per process pair (median of the {rounds} rounds' medians, 90 % interval when "
              "the rounds are resampled):")
        for label, *_ in FIGURES:
            if len(ratios[label]) < 2:
                continue
            medians = round_medians(ratios[label], pairs)
            low, high = resampled_interval(medians)
            print(f"    {label:44} {statistics.median(medians):.3f}x ({low:.3f}-{high:.3f})")
    leads = ratios["agent leads"]
    if 0.0 in leads and 1.0 in leads:
        print("  by which process led (a follower's burst comes after the other's burst of the "
              "same workload, a leader's after the other workload: the two halves differ by a "
              "few per cent even in the A/A control; their geometric mean balances it):")
        for label, *_ in FIGURES:
            if len(ratios[label]) < 2:
                continue
            pairs_led = list(zip(ratios[label], leads, strict=True))
            halves = [statistics.median([r for r, led in pairs_led if led == flag])
                      for flag in (1.0, 0.0)]
            print(f"    {label:44} agent led {halves[0]:.3f}x, plain led {halves[1]:.3f}x, "
                  f"balanced {(halves[0] * halves[1]) ** 0.5:.3f}x")
    idle = {name: statistics.median(ratios[f"idle CPU, {name}"]) for name in ("plain", "agent")}
    print(f"  CPU while waiting between bursts (median): plain {idle['plain'] * 1e3:.2f} ms/s, "
          f"agent {idle['agent'] * 1e3:.2f} ms/s — the agent's clock-driven work the bursts "
          f"may miss is at most the difference, {(idle['agent'] - idle['plain']) * 100:.2f} % "
          f"of a core")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6,
                        help="fresh process pairs (default 6): each process has its own luck "
                             "(hash seeds, memory layout) that no number of bursts averages out")
    parser.add_argument("--pairs", type=int, default=10, help="burst pairs per round")
    parser.add_argument("--matched-seeds", action="store_true",
                        help="both processes of round N run with PYTHONHASHSEED=N")
    parser.add_argument("--burst", type=float, default=0.5, help="seconds of workload A")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks of workload B")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--control", action="store_true",
                       help="A/A: both processes plain (the method's own spread and bias)")
    which.add_argument("--imports-only", nargs="?", const="agent", default="",
                       choices=("agent", "stdlib"),
                       help="the second process imports the agent's modules and never starts "
                            "it; `stdlib`: as many standard-library modules and objects "
                            "instead (what a library of that size costs)")
    which.add_argument("--core-only", action="store_true",
                       help="the agent started, then its sampler, watchdog, GC pause timer and "
                            "discovery hooks stopped (what the task factory, lag probe and "
                            "server thread cost): --stop " + ",".join(CORE))
    which.add_argument("--stop", default="", metavar="PART,...",
                       help="the agent started, then these parts stopped once settled: "
                            + "; ".join(f"{name}: {what}" for name, what in PARTS.items()))
    parser.add_argument("--only", choices=("A", "B"), default="",
                        help="drive this workload alone (more pairs in the same time)")
    parser.add_argument("--raw", type=argparse.FileType("w"), metavar="FILE",
                        help="write each burst pair's results as JSON lines to FILE")
    args = parser.parse_args()
    stop = CORE if args.core_only else tuple(p for p in args.stop.split(",") if p)
    unknown = [p for p in stop if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    ratios = interleave(args.pairs, args.burst, args.tasks, args.rounds,
                        matched_seeds=args.matched_seeds, control=args.control,
                        imports_only=args.imports_only, stop=stop, only=args.only,
                        raw=args.raw)
    title = "A/A control: plain / plain" if args.control else \
        "agent's modules imported, not started / plain" if args.imports_only == "agent" else \
        "standard-library modules imported / plain" if args.imports_only else \
        f"agent with {', '.join(stop)} stopped / plain" if stop else \
        "agent at defaults / plain"
    print(f"{title}, "
          f"interleaved bursts ({args.burst} s of A, "
          f"{args.tasks} tasks of B; {args.rounds} process pairs × {args.pairs} burst pairs):")
    report(ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
