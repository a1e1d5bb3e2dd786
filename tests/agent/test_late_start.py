"""An agent started late, inside a loop that already runs 30k tasks: every one of them is
accounted (in chunks, so the app's loop is never held for the whole adoption)."""

from __future__ import annotations

from tests.support.procs import AgentProcess, wait_until

PROGRAM = """
    import asyncio
    import introspect

    async def parked(event):
        await event.wait()

    async def main():
        event = asyncio.Event()
        tasks = [asyncio.create_task(parked(event)) for _ in range(30_000)]
        await asyncio.sleep(0)
        introspect.start()
        print("started", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def test_tasks_that_existed_before_the_agent_are_all_counted() -> None:
    with AgentProcess.script(PROGRAM, under_run=False) as proc:
        proc.wait_for_line("started")

        def counted() -> int | None:
            kinds = {k.kind: k.count for k in proc.snapshot(top_tasks=0).tasks.by_kind}
            return kinds.get("__main__.parked") if kinds.get("__main__.parked") == 30_000 \
                else None

        wait_until(counted, timeout=30, message="30,000 adopted tasks")
        with proc.client() as client:
            page = client.tasks(kind="__main__.parked", limit=5)
            assert (page.matched, page.matched_exact, len(page.tasks)) == (30_000, True, 5)
