"""Host throughput on workload A with 50 streaming clients (+ one that stops reading) attached,
versus the same agent with no client. Alternating runs, fresh host process per run; the ratio
of medians is the result (target >= 0.95).

    .venv/bin/python benchmarks/attach_load.py [--rounds 5] [--duration 3] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.attach_workloads import HOST_THROUGHPUT
from introspect.client.connection import AsyncClient
from introspect.protocol import auth, framing
from introspect.protocol import messages as m
from tests.support.procs import AgentProcess


class Attached:
    """`n` streaming clients and one stalled reader, on their own thread and loop."""

    def __init__(self, target: str, n: int, interval: float) -> None:
        self.target, self.n, self.interval = target, n, interval
        self.updates = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),),
                                       daemon=True)
        self.stop_event: asyncio.Event | None = None

    async def main(self) -> None:
        self.stop_event = asyncio.Event()
        started = 0

        async def one() -> None:
            nonlocal started
            client = await AsyncClient(self.target, timeout=30).connect()
            first = True
            try:
                async for _ in client.subscribe(interval=self.interval):
                    self.updates += 1
                    if first:
                        first = False
                        started += 1
                        if started == self.n:
                            self.ready.set()
            finally:
                await client.close()

        stalled_reader, stalled_writer = await asyncio.open_unix_connection(self.target)
        nonce = auth.new_nonce()
        stalled_writer.write(framing.pack(m.encode(m.Hello(versions=[1], client_nonce=nonce))))
        await framing.read_frame(stalled_reader, framing.MAX_FRAME_TO_CLIENT)
        stalled_writer.write(framing.pack(m.encode(m.Authenticate())))
        await framing.read_frame(stalled_reader, framing.MAX_FRAME_TO_CLIENT)
        stalled_writer.write(framing.pack(m.encode(m.Subscribe(interval=0.1, top_tasks=1000))))
        tasks = [asyncio.ensure_future(one()) for _ in range(self.n)]
        await self.stop_event.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stalled_writer.close()

    def __enter__(self) -> Attached:
        self.thread.start()
        if not self.ready.wait(60):
            raise RuntimeError("the clients did not all get their first update")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


def one_run(with_clients: bool, duration: float, clients: int,
            interval: float) -> tuple[float, float, float]:
    proc = AgentProcess([sys.executable, "-m", "introspect", "run", "--", sys.executable, "-c",
                         HOST_THROUGHPUT, str(duration)])
    with proc:
        proc.wait_for_line("ready")
        target = str(proc.wait_for_agent())

        def go() -> tuple[float, float, float]:
            assert proc.proc.stdin is not None
            proc.proc.stdin.write("go\n")
            proc.proc.stdin.flush()
            line = proc.wait_for_line("rate ", timeout=duration + 60)
            return float(line.split()[1]), float(line.split()[2]), float(line.split()[3])

        if with_clients:
            with Attached(target, clients, interval):
                return go()
        return go()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("INTROSPECT_RUNTIME_DIR", tempfile.mkdtemp(prefix="introspect-bench-"))
    rates: dict[bool, list[float]] = {False: [], True: []}
    per_cpu: dict[bool, list[float]] = {False: [], True: []}
    per_loop_cpu: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)  # alternate who goes first
        for with_clients in order:
            rate, cpu_rate, loop_rate = one_run(with_clients, args.duration, args.clients,
                                                args.interval)
            per_loop_cpu[with_clients].append(loop_rate)
            rates[with_clients].append(rate)
            per_cpu[with_clients].append(cpu_rate)
            label = f"{args.clients} clients + 1 stalled" if with_clients else "no client"
            print(f"round {round_ + 1}: {label:<24} {rate:>10,.0f} msg/s  "
                  f"{cpu_rate:>10,.0f} msg/CPU-s  {loop_rate:>10,.0f} msg/loop-CPU-s", flush=True)
    for name, table in (("msg/s", rates), ("msg/CPU-s", per_cpu),
                        ("msg/loop-thread-CPU-s", per_loop_cpu)):
        base, loaded = statistics.median(table[False]), statistics.median(table[True])
        print(f"median {name}: no client {base:,.0f}; with clients {loaded:,.0f}; "
              f"ratio {loaded / base:.3f} (target >= 0.95)")

if __name__ == "__main__":
    main()
