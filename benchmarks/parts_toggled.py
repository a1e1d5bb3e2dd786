"""What the started agent's clock-driven parts cost on workload A, natively: one process, the
parts switched off and on between short bursts (issue 17).

    .venv/bin/python benchmarks/parts_toggled.py [--pairs 300] [--burst 0.2] [--control]
        [--whole | --part NAME]

Across processes, workload A's ratio carries each process's own luck (memory layout, hash
seeds: ±3 % between rounds of interleaved.py, its A/A control included), more than the parts
cost. Here a single agent process runs A in pairs of bursts, the order flipped every pair: one
with the parts on, one with them off. Same process, same heap, adjacent seconds: the pair's
ratio is the parts' cost. Switched together:
- the SIGPROF busy-time sampler (its timer stopped; a tick on its way does nothing);
- the watchdog's select() time-stamps (the selector clock uninstalled);
- the queue-owner sampling windows (no new window opens);
- the GC pause timer (`gc.callbacks` entry removed);
- the watchdog's held-time looks (its next sampling wake-up an hour away).
What stays in both halves: the task factory (A makes no tasks while measured), the 10 Hz lag
probe, the agent's threads asleep, its imports and heap. `--whole` switches the agent itself
instead, `introspect.start()` / `introspect.stop()` between bursts: everything it does at run
time, its task factory and threads included; what stays is its modules (imported once, their
definitions settled). `--part NAME` switches one part alone, the rest at defaults in both
halves (bisecting in one process). `--control` switches nothing (A/A: the method's own
spread). Reported: the median of the pairs' ratios (off/on speed, per loop-thread CPU and
wall clock) with its IQR and a 90 % interval by resampling pairs: over each whole burst (its
400 tasks and 200 queues made and torn down included) and over its measured window only
("window": the steady state).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from benchmarks.workloads import agent_settled, workload_a


class WholeAgent:
    """`--whole`: the agent itself started and stopped (benchmark use only). What stays in
    both halves: its modules, imported once, and their settled definitions."""

    def __init__(self, agent: Any) -> None:
        self.agent: Any = agent

    async def switch(self, on: bool) -> None:
        import introspect

        changed = on != (self.agent is not None)
        if on and self.agent is None:
            self.agent = introspect.start()
            await agent_settled()
            deadline = time.monotonic() + 5.0  # the sampler arms at the loop's first beats
            while time.monotonic() < deadline and not (
                    self.agent.sampler is not None and self.agent.sampler.active):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # its threads' start-up work done
        elif not on and self.agent is not None:
            introspect.stop()
            self.agent = None
        if changed:  # what a start or stop leaves to do (collections, threads' start-up
            await workload_a(0.2)  # work, first queue windows) in a burst not measured


class OnePart:
    """`--part NAME`: one part of the started agent switched off and back on (benchmark use
    only); the rest stays at defaults in both halves."""

    NAMES = {
        "sampler": "the SIGPROF busy-time sampler (its timer stopped)",
        "clock": "the watchdog's select() time-stamps (the selector clock uninstalled)",
        "windows": "the queue-owner sampling windows",
        "gc": "the GC pause timer (its gc.callbacks entry)",
        "duties": "the periodic duties (lints, waits, history, queue waiters)",
        "probe": "the 10 Hz lag probe (detached; its beat makes the duties)",
        "hooks": "the queue/executor discovery hooks (a fresh window sampler at each switch)",
        "factory": "the counting task factory (the burst's tasks made without it)",
    }

    def __init__(self, agent: Any, name: str) -> None:
        import math

        from introspect.agent import loop_attach

        blocking, loop, calls = agent.blocking, agent.loop, agent.queues.queue_calls
        factory, duties_due = loop.get_task_factory(), blocking._schedule_duties

        def no_duties() -> None:
            blocking._duties_due = math.inf
            blocking._watchdog_due.set(math.inf)

        self.set = {
            "sampler": lambda on: Parts.set_sampler(agent.sampler, on),
            "clock": lambda on: blocking._clock.install() if on else blocking._clock.uninstall(),
            "windows": lambda on: Parts.set_windows(agent, calls, on),
            "gc": lambda on: agent.gc.install() if on else agent.gc.uninstall(),
            "duties": lambda on: setattr(blocking, "_schedule_duties",
                                         duties_due if on else no_duties) or
            blocking._schedule_duties(),
            "probe": lambda on: agent.loop_probe.attach(loop) if on else
            agent.loop_probe.detach(),
            "hooks": lambda on: agent._hooks.install() if on else agent._hooks.uninstall(),
            "factory": lambda on: loop_attach._ORIGINAL["set_task_factory"](
                loop, factory if on else None),
        }[name]

    async def switch(self, on: bool) -> None:
        self.set(on)


class Parts:
    """Switches the agent's clock-driven parts off and back on (benchmark use only)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.sampler = agent.sampler
        self.blocking = agent.blocking
        self.clock = agent.blocking._clock
        self.calls = agent.queues.queue_calls
        self.sample_gap = agent.blocking.sample_gap
        if self.sampler is None or not self.sampler.active or self.clock is None:
            raise SystemExit("error: the agent's sampler or selector clock is not running")

    @staticmethod
    def set_sampler(sampler: Any, on: bool) -> None:
        sampler.active = on  # before the timer: a tick on its way returns at once
        interval = sampler.interval if on else 0.0
        signal.setitimer(signal.ITIMER_PROF, interval, interval)

    @staticmethod
    def set_windows(agent: Any, calls: Any, on: bool) -> None:
        if calls is not None:
            if not on:
                calls.close()
            agent.queues.queue_calls = calls if on else None

    def set(self, on: bool) -> None:
        self.set_sampler(self.sampler, on)
        if on:
            self.clock.install()
        else:
            self.clock.uninstall()
        self.set_windows(self.agent, self.calls, on)
        if on:
            self.agent.gc.install()
        else:
            self.agent.gc.uninstall()
        self.blocking.sample_gap = self.sample_gap if on else (lambda: 3600.0)

    async def switch(self, on: bool) -> None:
        self.set(on)


async def measure(pairs: int, burst: float, control: bool,
                  whole: bool = False, part: str = "") -> dict[str, list[float]]:
    import introspect

    agent = introspect.start()
    await agent_settled()
    await asyncio.sleep(0.5)  # the sampler arms at the loop's first beats
    parts: Parts | WholeAgent | OnePart = WholeAgent(agent) if whole else \
        OnePart(agent, part) if part else Parts(agent)
    await workload_a(burst)  # warm-up
    ratios: dict[str, list[float]] = {"loop-thread CPU": [], "wall clock": [],
                                      "window CPU": [], "window wall": []}
    for number in range(pairs):
        got = {}
        for on in ((True, False) if number % 2 == 0 else (False, True)):
            await parts.switch(on or control)
            await asyncio.sleep(0.02)  # a window or a tick of the other half settles
            cpu, wall = time.thread_time(), time.perf_counter()
            rate = await workload_a(burst)
            messages = rate * burst
            got[on] = ((time.thread_time() - cpu) / messages,
                       (time.perf_counter() - wall) / messages,
                       workloads.last_window_cpu / messages, 1.0 / rate)
        # speed with the parts on relative to off: the parts' cost is 1 - ratio
        for index, label in enumerate(ratios):
            ratios[label].append(got[False][index] / got[True][index])
        if number % 50 == 49:
            print(f"pair {number + 1}/{pairs}", file=sys.stderr, flush=True)
    await parts.switch(True)
    introspect.stop()
    return ratios


def resampled_interval(values: list[float], trials: int = 4000) -> tuple[float, float]:
    rng = random.Random(17)
    picks = sorted(statistics.median(rng.choices(values, k=len(values)))
                   for _ in range(trials))
    return picks[int(0.05 * trials)], picks[int(0.95 * trials) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="burst pairs (default 300)")
    parser.add_argument("--burst", type=float, default=0.2, help="seconds of workload A")
    parser.add_argument("--control", action="store_true",
                        help="A/A: switch nothing (the method's own spread and bias)")
    parser.add_argument("--whole", action="store_true",
                        help="switch the whole agent: introspect.start() / stop() between "
                             "bursts (with --control: started in both halves)")
    parser.add_argument("--part", choices=tuple(OnePart.NAMES), default="",
                        help="switch this part alone: " + "; ".join(
                            f"{name}: {what}" for name, what in OnePart.NAMES.items()))
    args = parser.parse_args()
    if args.part and args.whole:
        parser.error("--part and --whole switch different things: choose one")
    ratios = asyncio.run(measure(args.pairs, args.burst, args.control, args.whole, args.part))
    title = "A/A control (on in both halves)" if args.control else \
        "workload A with the agent started / stopped" if args.whole else \
        f"workload A with {OnePart.NAMES[args.part]} on / off" if args.part else \
        "workload A with the agent's clock-driven parts on / off"
    print(f"{title}, one process, {args.pairs} pairs of {args.burst} s bursts:")
    for label, values in ratios.items():
        q1, median, q3 = statistics.quantiles(values, n=4)
        low, high = resampled_interval(values)
        print(f"  {label:16} {median:.4f}x (IQR {q1:.3f}-{q3:.3f}; 90 % interval "
              f"{low:.4f}-{high:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
