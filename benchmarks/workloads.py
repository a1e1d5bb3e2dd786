"""Shared benchmark workloads (FINDINGS.md): import these, never copy them.

    messages_per_s = await workload_a(duration=2.0)   # switch-heavy
    tasks_per_s = await workload_b(n=200_000, batch=1000)   # task churn
    await workload_a_messages(20_000)   # A for a fixed amount of work (instruction counts)

Both run on the *current* event loop, so a benchmark can run them plain, under the agent, under
asyncio debug mode or aiomonitor, and compare ratios measured in the same process run.
"""

from __future__ import annotations

import asyncio
import time

PAIRS = 200
# The loop thread's CPU seconds over the last `workload_a` window (set up and teardown left
# out, as its returned rate leaves them out of the wall clock)
last_window_cpu = 0.0


async def _producer(queue: asyncio.Queue[int], stop: list[bool]) -> None:
    put = queue.put
    while not stop[0]:
        await put(1)


async def _consumer(queue: asyncio.Queue[int], counter: list[int]) -> None:
    get = queue.get
    while True:
        await get()
        counter[0] += 1


async def workload_a(duration: float = 2.0, pairs: int = PAIRS) -> float:
    """`pairs` producer/consumer task pairs over `asyncio.Queue(maxsize=1)`: every message is
    a task switch. Returns messages per second over `duration` seconds."""
    counter = [0]
    stop = [False]
    tasks: list[asyncio.Task[None]] = []
    for _ in range(pairs):
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        tasks.append(asyncio.ensure_future(_consumer(queue, counter)))
        tasks.append(asyncio.ensure_future(_producer(queue, stop)))
    global last_window_cpu
    await asyncio.sleep(0)  # let every task start before the clock does
    start_count = counter[0]
    started, started_cpu = time.perf_counter(), time.thread_time()
    await asyncio.sleep(duration)
    elapsed = time.perf_counter() - started
    last_window_cpu = time.thread_time() - started_cpu
    done = counter[0] - start_count
    stop[0] = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return done / elapsed


async def _counting_consumer(queue: asyncio.Queue[int], counter: list[int], n: int,
                             done: asyncio.Future[None]) -> None:
    get = queue.get
    while True:
        await get()
        counter[0] += 1
        if counter[0] == n:
            done.set_result(None)


async def workload_a_messages(n: int, pairs: int = PAIRS) -> None:
    """Workload A for a fixed number of messages instead of a duration: for instruction
    counts (callgrind), where the work done must not depend on how fast it runs."""
    counter = [0]
    stop = [False]
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tasks: list[asyncio.Task[None]] = []
    for _ in range(pairs):
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        tasks.append(asyncio.ensure_future(_counting_consumer(queue, counter, n, done)))
        tasks.append(asyncio.ensure_future(_producer(queue, stop)))
    await done
    stop[0] = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _noop() -> None:
    return None


async def workload_b(n: int = 200_000, batch: int = 1000) -> float:
    """Create and await `n` no-op tasks in batches of `batch`. Returns tasks per second."""
    create = asyncio.ensure_future
    started = time.perf_counter()
    done = 0
    while done < n:
        size = min(batch, n - done)
        await asyncio.gather(*[create(_noop()) for _ in range(size)])
        done += size
    return n / (time.perf_counter() - started)


if __name__ == "__main__":  # quick look: python -m benchmarks.workloads
    print(f"workload A: {asyncio.run(workload_a(1.0)):,.0f} messages/s")
    print(f"workload B: {asyncio.run(workload_b(50_000)):,.0f} tasks/s")


async def agent_settled(timeout: float = 60.0) -> None:
    """Wait until a just-started agent is in the state a service runs in: its server thread
    has imported what a client needs and settled the agent's definitions out of the
    collector's generations (introspect/agent/permanent.py). ~0.2 s after start(), longer
    under callgrind."""
    from introspect.agent import permanent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not permanent.start_settled.is_set():
        await asyncio.sleep(0.01)
