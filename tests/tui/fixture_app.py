"""A deterministic program for the TUI tests: it knows every task, queue and error it makes.

    python fixture_app.py [SECONDS]

Prints `ready` once everything exists, `victim cancelled` when the `victim` task is cancelled.
"""

import asyncio
import os
import sys

# ANSI colour, Rich markup, a bell, a newline and 10 kB: must render escaped and truncated.
HOSTILE_NAME = "\x1b[31mRED\x1b[0m [bold]markup[/bold] \x07bell\nnl " + "x" * 10_000
QUEUE_BACKLOG = 8
QUEUE_CAPACITY = 10
UNBOUNDED_BACKLOG = 3
CHILDREN = 3
BULK = int(os.environ.get("FIXTURE_BULK_TASKS", "0"))  # `bulk` tasks, for paging tests


async def idle() -> None:
    await asyncio.Event().wait()


async def child() -> None:
    await asyncio.sleep(3600)


async def spawner() -> None:
    kids = [asyncio.create_task(child(), name=f"child-{i}") for i in range(CHILDREN)]
    await asyncio.gather(*kids)


async def victim() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print("victim cancelled", flush=True)
        raise


async def bulk() -> None:
    await asyncio.sleep(3600)


async def crasher() -> None:
    raise ValueError("fixture failure: bad input 42")


async def main(seconds: float) -> None:
    backlog: asyncio.Queue[int] = asyncio.Queue(maxsize=QUEUE_CAPACITY)
    for i in range(QUEUE_BACKLOG):
        backlog.put_nowait(i)
    unbounded: asyncio.Queue[int] = asyncio.Queue()
    for i in range(UNBOUNDED_BACKLOG):
        unbounded.put_nowait(i)
    keep = [
        asyncio.create_task(idle(), name="idle-waiter"),
        asyncio.create_task(spawner(), name="spawner"),
        asyncio.create_task(victim(), name="victim"),
        asyncio.create_task(idle(), name=HOSTILE_NAME),
    ]
    keep += [asyncio.create_task(bulk(), name=f"bulk-{i}") for i in range(BULK)]
    failed = asyncio.create_task(crasher(), name="crasher")
    await asyncio.sleep(0)
    await asyncio.wait([failed])
    failed.exception()  # retrieved: a crash report, without the "never retrieved" log
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    for task in keep:
        task.cancel()
    await asyncio.gather(*keep, return_exceptions=True)
    del backlog, unbounded


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3600))
