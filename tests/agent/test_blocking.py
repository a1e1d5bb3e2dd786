"""Blocking calls caught red-handed, against programs that know what they block and where."""

from __future__ import annotations

import textwrap

import pytest

from tests.support.procs import AgentProcess, wait_until

SYNC_DB = """
    import asyncio, sys, time

    def sync_db_query():
        time.sleep(0.5)

    async def report_handler():
        await asyncio.sleep(0.05)
        sync_db_query()

    async def main():
        # the test says go once it is attached (read off the loop: blocking on it would
        # be a block of its own, reported since the agent sees blocks right after start)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.create_task(report_handler(), name="report-7")
        print("done", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def blocking_events(proc: AgentProcess) -> list[dict]:
    return [e for e in proc.snapshot().to_dict()["events"] if e["kind"] == "blocking"]


def test_half_second_sleep_is_one_event_with_the_culprit_stack() -> None:
    with AgentProcess.script(SYNC_DB) as proc:
        proc.wait_for_agent()
        assert blocking_events(proc) == []
        proc.proc.stdin.write("go\n")
        proc.proc.stdin.flush()
        proc.wait_for_line("done")
        events = wait_until(lambda: [e for e in blocking_events(proc) if not e["ongoing"]],
                            message="a finished blocking event")
        assert len(blocking_events(proc)) == 1
        event = events[0]
        assert abs(event["duration"] - 0.5) <= 0.05, event["duration"]
        functions = [f["function"] for f in event["stack"]]
        assert functions[-2:] == ["sync_db_query", "time.sleep"], functions
        assert "report_handler" in functions
        assert event["culprit"] == "time.sleep"
        assert event["location"].endswith(":5 sync_db_query")
        assert event["task"]["name"] == "report-7"
        assert event["task"]["kind"] == "__main__.report_handler"
        assert event["single_step"] is True
        assert event["callback"] is None
        lints = [e["lint"] for e in proc.snapshot().to_dict()["events"] if e["kind"] == "lint"]
        assert sorted(lints) == ["loop_blocked", "task_never_yields"]


LONG_BLOCK = """
    import asyncio, time

    def crunch_forever_ish(deadline):
        n = 0
        while time.monotonic() < deadline:   # pure Python: holds the GIL, switches every 5 ms
            n += 1
        return n

    async def main():
        await asyncio.sleep(0.3)
        print("blocking", flush=True)
        crunch_forever_ish(time.monotonic() + 3.0)
        print("unblocked", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def test_three_second_cpu_block_is_reported_while_still_blocked() -> None:
    with AgentProcess.script(LONG_BLOCK) as proc:
        proc.wait_for_line("blocking")

        def ongoing() -> dict | None:
            for event in blocking_events(proc):
                if event["ongoing"]:
                    return event
            return None

        event = wait_until(ongoing, timeout=10, message="an ongoing blocking event")
        assert not any("unblocked" in line for line in proc.stdout), "seen only after the block"
        functions = [f["function"] for f in event["stack"]]
        # innermost: the spinning function, or the C call it was in at that instant (the
        # stack ends with the callee's name then: `time.monotonic`)
        assert functions[-1] == "crunch_forever_ish" or \
            functions[-2:] == ["crunch_forever_ish", "time.monotonic"], functions
        assert event["task"]["kind"] == "__main__.main"
        # the snapshot names the running task too (3.14 keeps it on the thread state)
        states = {r.kind: r.state for r in proc.snapshot(top_tasks=20).tasks.top}
        assert not any("unblocked" in line for line in proc.stdout), "still blocked"
        assert states["__main__.main"] == "running", states
        proc.wait_for_line("unblocked")
        final = wait_until(lambda: [e for e in blocking_events(proc) if not e["ongoing"]],
                           message="the block's end")
        assert len(final) == 1
        assert 2.7 <= final[0]["duration"] <= 3.3, final[0]["duration"]


CALLBACK_BLOCK = """
    import asyncio, time

    def refresh_cache():
        time.sleep(0.3)
        print("refreshed", flush=True)

    async def main():
        asyncio.get_running_loop().call_later(0.3, refresh_cache)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def test_a_blocking_callback_is_named_as_the_callback() -> None:
    with AgentProcess.script(CALLBACK_BLOCK) as proc:
        proc.wait_for_line("refreshed")
        events = wait_until(lambda: [e for e in blocking_events(proc) if not e["ongoing"]],
                            message="a finished blocking event")
        event = events[0]
        assert event["task"] is None
        assert event["callback"].endswith("refresh_cache")
        assert event["single_step"] is False
        assert abs(event["duration"] - 0.3) <= 0.05


def test_a_healthy_program_has_no_blocking_event() -> None:
    source = """
        import asyncio
        async def tick():
            for _ in range(30):
                await asyncio.sleep(0.01)
        async def main():
            await asyncio.gather(*(tick() for _ in range(50)))
            print("done", flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
    """
    with AgentProcess.script(source) as proc:
        proc.wait_for_line("done")
        snap = proc.snapshot()
        assert [e for e in snap.to_dict()["events"] if e["kind"] in ("blocking", "lint")] == []


SHORT_BLOCKS = """
    import asyncio, time

    async def main():
        await asyncio.sleep(0.3)
        for _ in range(12):
            time.sleep(0.2)              # twice the threshold: a block, but a short one
            await asyncio.sleep(0.05)
        print("done", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


PURE_WATCH = """
    import sys
    sys.modules["introspect.agent._watchdog_accel"] = None  # the pure-Python wait
    import introspect
    introspect.start()
"""


@pytest.mark.parametrize("wait", ["c", "python"])
def test_every_block_just_over_the_threshold_is_caught(wait: str) -> None:
    """The watchdog wakes at most a threshold apart, and a wake-up that sees the loop busy
    comes back when that stretch crosses the threshold: no block slips between wake-ups
    (the C wait makes the looks below the threshold itself; the Python one, every look)."""
    script = SHORT_BLOCKS if wait == "c" else textwrap.dedent(PURE_WATCH) + \
        textwrap.dedent(SHORT_BLOCKS)
    with AgentProcess.script(script, under_run=wait == "c") as proc:
        proc.wait_for_line("done")
        events = wait_until(
            lambda: (found := [e for e in blocking_events(proc) if not e["ongoing"]])
            and len(found) >= 12 and found, message="twelve finished blocking events")
    assert len(events) == 12, [e["duration"] for e in events]
    assert all(abs(e["duration"] - 0.2) <= 0.05 for e in events), [e["duration"] for e in events]
    assert all(e["culprit"] == "time.sleep" for e in events), [e["culprit"] for e in events]
