"""A small service for the fleet tests, in one of four roles (argv[1]); light on CPU, since
twenty run at once on a shared 2-core machine.

healthy   three sleeping workers and a queue at equilibrium
backlog   a queue that gains 10 items a second and is never drained
crashloop a supervisor restarting a worker that raises at once, twenty times a second
blocked   blocks its event loop for 0.15 s every 5 s (time.sleep on the loop)

With docs/fleet.md's score these rank crashloop > backlog > blocked > healthy at any age from
half a minute to the five minutes of the blocked window: crashes grow with the 15 m window
(20/s is ~7.6 at 30 s), the backlog's trend is constant (~5.9 + its alert), blocked time stays
under ~5.3 with lag and alert, a healthy loop under 0.2.
"""

from __future__ import annotations

import asyncio
import sys
import time

import introspect


async def idle_worker() -> None:
    while True:
        await asyncio.sleep(0.5)


async def balanced(queue: asyncio.Queue[int]) -> None:
    while True:
        queue.put_nowait(1)
        await queue.get()
        await asyncio.sleep(0.5)


async def flooding_producer(queue: asyncio.Queue[int]) -> None:
    while True:
        for _ in range(5):
            queue.put_nowait(1)
        await asyncio.sleep(0.5)


async def crashing_worker() -> None:
    raise ValueError("unexpected message")


async def supervisor() -> None:
    while True:
        try:
            await asyncio.create_task(crashing_worker())
        except ValueError:
            pass
        await asyncio.sleep(0.05)


async def periodic_blocker() -> None:
    while True:
        await asyncio.sleep(5)
        time.sleep(0.15)  # the bug under test: a blocking call on the loop


async def main(role: str) -> None:
    introspect.start()
    queue: asyncio.Queue[int] = introspect.watch(asyncio.Queue(), name="inbox")
    tasks = [asyncio.create_task(idle_worker()) for _ in range(3)]
    tasks.append(asyncio.create_task(
        flooding_producer(queue) if role == "backlog" else balanced(queue)))
    if role == "crashloop":
        tasks.append(asyncio.create_task(supervisor()))
    if role == "blocked":
        tasks.append(asyncio.create_task(periodic_blocker()))
    print("ready", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
