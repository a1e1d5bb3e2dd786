"""Host programs for the attach benchmarks (run under `introspect run`).

Workload A of FINDINGS.md: 200 producer/consumer task pairs over `asyncio.Queue(maxsize=1)`,
so every message is a task switch. The program prints `ready` once the agent is up and, every
`--report` seconds, `count N` (messages so far), so the benchmark reads throughput from the
host's own counter.
"""

from __future__ import annotations

import textwrap

WORKLOAD_A = textwrap.dedent("""
    import asyncio, sys, time

    PAIRS = 200
    count = 0

    async def producer(q):
        while True:
            await q.put(1)

    async def consumer(q):
        global count
        while True:
            await q.get()
            count += 1

    async def reporter(period):
        while True:
            await asyncio.sleep(period)
            print(f"count {count} {time.monotonic():.6f}", flush=True)

    async def main():
        mode = sys.argv[1] if len(sys.argv) > 1 else "saturated"
        period = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
        tasks = [asyncio.ensure_future(reporter(period))]
        if mode == "saturated":
            for _ in range(PAIRS):
                q = asyncio.Queue(maxsize=1)
                tasks += [asyncio.ensure_future(producer(q)),
                          asyncio.ensure_future(consumer(q))]
        print("ready", flush=True)
        if mode == "blocked-sleep":
            while True:  # the loop thread stuck in Python code that releases the GIL
                time.sleep(0.05)
        if mode == "blocked-busy":
            while True:  # the loop thread stuck in pure Python (holds the GIL)
                sum(range(10000))
        await asyncio.gather(*tasks)

    asyncio.run(main())
""")
