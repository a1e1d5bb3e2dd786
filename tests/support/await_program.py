"""A program that knows what awaits what (ground truth for the await graph in `dump`, the TUI's
task page and Tree view):

    main -> gather(fetcher, grouper, direct)
    fetcher -> await fetched (a task awaiting a task)
    grouper -> TaskGroup(grouped-1, grouped-2)
    pool -> gather(pooled-0 .. pooled-{POOL-1})   (identical waiters)
    session-0 .. session-{SESSIONS-1}: created by main, awaited by nobody

`await_process(pool, sessions)` runs it; it prints "ready" once every task waits.
"""

from __future__ import annotations

from tests.support.procs import AgentProcess

SOURCE = """
import asyncio, os, introspect

POOL, SESSIONS = int(os.environ["AWAIT_POOL"]), int(os.environ["AWAIT_SESSIONS"])

async def leaf(release):
    await release.wait()

async def session(release):
    await release.wait()

async def fetcher(release):
    await asyncio.create_task(leaf(release), name="fetched")

async def grouper(release):
    async with asyncio.TaskGroup() as group:
        group.create_task(leaf(release), name="grouped-1")
        group.create_task(leaf(release), name="grouped-2")

async def pool(release):
    await asyncio.gather(*(asyncio.create_task(leaf(release), name=f"pooled-{i}")
                           for i in range(POOL)))

async def main():
    introspect.start()
    asyncio.current_task().set_name("main")
    release = asyncio.Event()
    for i in range(SESSIONS):
        asyncio.create_task(session(release), name=f"session-{i}")
    asyncio.create_task(pool(release), name="pool")
    work = [asyncio.create_task(fetcher(release), name="fetcher"),
            asyncio.create_task(grouper(release), name="grouper"),
            asyncio.create_task(leaf(release), name="direct")]
    asyncio.get_running_loop().call_later(0.2, print, "ready")  # PYTHONUNBUFFERED in tests
    await asyncio.gather(*work)

asyncio.run(main())
"""

# (waiter, via, awaited) by task name; the pool's edges are ("pool", "gather", "pooled-i").
EXPECTED = {
    ("main", "gather", "fetcher"), ("main", "gather", "grouper"), ("main", "gather", "direct"),
    ("fetcher", "task", "fetched"),
    ("grouper", "taskgroup", "grouped-1"), ("grouper", "taskgroup", "grouped-2"),
}


def expected_edges(pool: int) -> set[tuple[str, str, str]]:
    return EXPECTED | {("pool", "gather", f"pooled-{i}") for i in range(pool)}


def await_process(pool: int, sessions: int, **env: str) -> AgentProcess:
    return AgentProcess.script(SOURCE, under_run=False,
                               env={"AWAIT_POOL": str(pool), "AWAIT_SESSIONS": str(sessions),
                                    **env})
