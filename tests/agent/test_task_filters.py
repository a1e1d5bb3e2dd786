"""Filtered task pages against a program that knows its tasks: names, kinds and where each one
waits; age order and paging; the early-stopping count (`matched_exact`); a task that moves
on is found at its new place (the per-task location cache follows it)."""

from __future__ import annotations

from tests.support.procs import AgentProcess, wait_until

PROGRAM = """
    import asyncio, sys

    async def wait_here(event):
        await event.wait()

    async def worker(event):
        await wait_here(event)

    async def special_spot(queue):
        await queue.get()

    async def first_spot(event):
        await event.wait()

    async def second_spot(event):
        await event.wait()

    async def mover(ev1, ev2):
        await first_spot(ev1)
        await second_spot(ev2)

    async def main():
        never, ev1, ev2 = asyncio.Event(), asyncio.Event(), asyncio.Event()
        queue = asyncio.Queue()
        workers = [asyncio.create_task(worker(never), name=f"worker-{i}") for i in range(3000)]
        specials = [asyncio.create_task(special_spot(queue), name=f"odd-{i}") for i in range(50)]
        moving = asyncio.create_task(mover(ev1, ev2), name="mover")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        ev1.set()
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def test_filters_paging_and_moving_tasks() -> None:
    with AgentProcess.script(PROGRAM) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            # rare matches: a full scan, an exact count, oldest first
            page = client.tasks(text="odd-", limit=100)
            assert page.matched == 50 and page.matched_exact is True
            names = [t.name for t in page.tasks]
            assert names == [f"odd-{i}" for i in range(50)]
            # by location only (the function a task waits in; no name holds it)
            page = client.tasks(text="special_spot", limit=100)
            assert sorted(t.name for t in page.tasks) == sorted(names)
            assert page.matched == 50
            # common matches: the page is right, the count at least the page, at most truth
            truth = [f"worker-{i}" for i in range(3000) if f"worker-{i}".startswith("worker-1")]
            first = client.tasks(text="worker-1", limit=10)
            assert [t.name for t in first.tasks] == truth[:10]
            assert 10 <= first.matched <= len(truth)
            if first.matched_exact:  # else it stopped counting: a lower bound
                assert first.matched == len(truth)
            second = client.tasks(text="worker-1", limit=10, offset=10)
            assert [t.name for t in second.tasks] == truth[10:20]
            newest = client.tasks(text="worker-1", limit=5, descending=False)
            assert [t.name for t in newest.tasks] == truth[::-1][:5]
            assert client.tasks(location="first_spot").matched == 1
            assert client.tasks(location="second_spot").matched == 0
            proc.proc.stdin.write("go\n")
            proc.proc.stdin.flush()
            moved = wait_until(lambda: client.tasks(location="second_spot").tasks or None,
                               message="the mover seen at its new place")
            assert [t.name for t in moved] == ["mover"]
            assert client.tasks(location="first_spot").matched == 0
            assert client.tasks(text="first_spot").matched == 0
