"""Under uvloop (a loop written in Cython: no Python selector, no `_run_once`, no `_ready`):
the agent attaches whichever way the app starts uvloop, blocking events still fire with the
culprit's stack (durations from the lag probe, lower bounds), exact accounting says clearly
that it is unavailable, and the snapshot lists what is missing."""

from __future__ import annotations

import pytest

from introspect.errors import UserError
from tests.support.procs import AgentProcess, wait_until

PROGRAM = """
    import asyncio, os, sys, time
    import uvloop

    def sync_db_query():
        time.sleep(0.5)

    async def report_handler():
        await asyncio.sleep(0.05)
        sync_db_query()

    async def idle(event):
        await event.wait()

    async def main():
        print("loop " + type(asyncio.get_running_loop()).__module__, flush=True)
        event = asyncio.Event()
        idlers = [asyncio.create_task(idle(event), name=f"idle-{i}") for i in range(7)]
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.create_task(report_handler(), name="report-7")
        print("done", flush=True)
        await asyncio.sleep(3600)

    if os.environ["HOW"] == "install":
        uvloop.install()
        asyncio.run(main())
    else:
        uvloop.run(main())
"""


@pytest.mark.parametrize("how", ["install", "run"])
def test_blocking_events_and_limitations_under_uvloop(how: str) -> None:
    with AgentProcess.script(PROGRAM, env={"HOW": how}) as proc:
        assert proc.wait_for_line("loop ").strip() == "loop uvloop"
        proc.wait_for_agent()
        snap = wait_until(lambda: (lambda s: s if s.tasks.total >= 8 else None)(
            proc.snapshot(top_tasks=20)), message="the tasks counted under uvloop")
        assert snap.loop.loop_class.startswith("uvloop"), snap.loop.loop_class
        assert {k.kind: k.count for k in snap.tasks.by_kind}["__main__.idle"] == 7
        notes = "\n".join(snap.agent.limitations)
        assert "exact accounting: uvloop.Loop runs its own loop iteration" in notes, notes
        assert "blocking: durations are lower bounds" in notes, notes
        assert "self_waking_busy_loop" in notes, notes
        with proc.client() as client, pytest.raises(UserError, match="uvloop"):
            client.exact_accounting(5)
        proc.proc.stdin.write("go\n")
        proc.proc.stdin.flush()
        proc.wait_for_line("done")
        events = wait_until(
            lambda: [e for e in proc.snapshot().to_dict()["events"]
                     if e["kind"] == "blocking" and not e["ongoing"]],
            message="a finished blocking event under uvloop")
    assert len(events) == 1, events
    event = events[0]
    assert event["exact"] is False
    # a lower bound from the lag probe: never more than the truth, not far below it
    assert 0.3 <= event["duration"] <= 0.55, event["duration"]
    functions = [f["function"] for f in event["stack"]]
    assert functions[-2:] == ["sync_db_query", "time.sleep"], functions
    assert event["task"]["name"] == "report-7"
    assert event["task"]["kind"] == "__main__.report_handler"
