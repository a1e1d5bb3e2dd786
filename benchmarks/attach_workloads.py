"""Host programs for the attach benchmarks, run under `introspect run`. They import workload A
from benchmarks/workloads.py (200 producer/consumer pairs over asyncio.Queue(maxsize=1)).

HOST_MODES: `python -c HOST_MODES MODE` prints `ready`, then keeps its loop
    idle | saturated (workload A) | blocked-sleep (time.sleep in the loop thread) |
    blocked-busy (pure Python in the loop thread).
HOST_THROUGHPUT: prints `ready`, waits for a line on stdin, runs workload A for DURATION
    seconds (argv[1]) and prints `rate MESSAGES_PER_S MESSAGES_PER_CPU_S MESSAGES_PER_LOOP_CPU_S`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)

HOST_MODES = f"""
import asyncio, sys, time
sys.path.insert(0, {ROOT!r})
from benchmarks.workloads import workload_a

async def main():
    mode = sys.argv[1]
    print("ready", flush=True)
    if mode == "saturated":
        await workload_a(duration=3600)
    elif mode == "blocked-sleep":
        while True:  # stuck in code that releases the GIL
            time.sleep(0.05)
    elif mode == "blocked-busy":
        while True:  # stuck in pure Python: holds the GIL but for the switch interval
            sum(range(10000))
    else:
        await asyncio.sleep(3600)

asyncio.run(main())
"""

HOST_THROUGHPUT = f"""
import asyncio, sys, time
sys.path.insert(0, {ROOT!r})
from benchmarks.workloads import workload_a

async def main():
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    wall, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    rate = await workload_a(duration=float(sys.argv[1]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loop_cpu = time.thread_time() - loop_cpu
    # per CPU-second of this whole process (agent threads included), and of the loop thread
    # alone (what the agent takes from the app's loop, whoever else competes for the cores)
    print(f"rate {{rate:.1f}} {{rate * wall / cpu:.1f}} {{rate * wall / loop_cpu:.1f}}",
          flush=True)

asyncio.run(main())
"""
