"""While the loop is stuck in a task, the agent still answers and says how long."""

from __future__ import annotations

from introspect.client.connection import Client
from tests.support.procs import AgentProcess, wait_until

BLOCKER = r'''
import asyncio, time
def sync_db_query():
    time.sleep(3)
async def handler():
    print("blocking", flush=True)
    sync_db_query()
async def main():
    await asyncio.sleep(0.2)
    asyncio.create_task(handler())
    await asyncio.sleep(60)
asyncio.run(main())
'''


def test_snapshot_answers_within_a_second_while_loop_is_blocked():
    with AgentProcess.script(BLOCKER) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("blocking")
        # Each request must be answered within 1 s (the client's deadline), while blocked.
        with Client(str(proc.pid), timeout=1.0).connect() as client:
            snap = wait_until(
                lambda: (lambda s: s if s.loop.blocked_for_seconds >= 1.0 else None)(
                    client.snapshot()),
                timeout=2.5, message="blocked_for_seconds >= 1.0 while blocked")
        assert snap.loop.running
        assert snap.loop.lag_seconds >= 1.0
        running = [r for r in snap.tasks.top if r.state == "running"]
        assert running and "handler" in running[0].kind
        loop_thread = next(t for t in snap.threads if t.is_loop)
        assert "sync_db_query" in loop_thread.location
