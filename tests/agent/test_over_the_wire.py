"""Exact accounting and the "waiting on the same thing" report, asked for by a client."""

from __future__ import annotations

import pytest

from introspect.client.connection import AgentError
from tests.support.procs import AgentProcess, wait_until

PROGRAM = r'''
import asyncio, sys
async def account_handler(lock):
    async with lock:
        pass
async def stepper(n, started):
    await started.wait()
    for _ in range(n):
        await asyncio.sleep(0)
    print("stepper done", flush=True)
async def main():
    lock = asyncio.Lock()
    await lock.acquire()
    handlers = [asyncio.create_task(account_handler(lock)) for _ in range(5)]
    started = asyncio.Event()
    asyncio.create_task(stepper(250, started))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started.set()
    await asyncio.sleep(60)
asyncio.run(main())
'''


def test_stuck_report_and_exact_accounting_through_the_client():
    with AgentProcess.script(PROGRAM) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            groups = wait_until(lambda: client.stuck(min_tasks=2), message="a stuck group")
            group = groups[0]
            assert group.count == 5
            assert group.kind.endswith("account_handler")
            assert "Lock" in group.waiting_on
            assert "5 tasks of kind" in group.message
            # a task's detail says how long it has waited on the lock: never more than its
            # age, and it grows while the lock stays held
            handler = group.tasks[0]
            first = client.task(handler)
            assert first.waiting_seconds is not None
            assert 0 <= first.waiting_seconds <= first.task.age_seconds + 0.01
            later = wait_until(lambda: (d := client.task(handler)).waiting_seconds is not None
                               and d.waiting_seconds >= first.waiting_seconds + 1.0 and d,
                               message="the wait to grow")
            assert later.waiting_seconds <= later.task.age_seconds + 0.01

            assert client.exact_report() is None
            assert "exact accounting on" in client.exact_accounting(30)
            proc.proc.stdin.write("go\n")
            proc.proc.stdin.flush()
            proc.wait_for_line("stepper done")
            report = client.exact_report()
            stepper = next(row for row in report.tasks if row.kind.endswith("stepper"))
            assert stepper.steps == 251  # 250 sleep(0) yields + the final step
            assert len(report.tasks) > 1
            busiest = client.exact_report(max_tasks=1)  # the request's limit is applied
            assert len(busiest.tasks) == 1 and busiest.kinds.keys() >= report.kinds.keys()
            with pytest.raises(AgentError, match="seconds"):
                client.exact_accounting(-1)


def test_read_only_role_cannot_switch_on_exact_accounting(tmp_path):
    control, read = tmp_path / "control", tmp_path / "read"
    control.write_text("control-token-123456")
    read.write_text("read-token-123456")
    src = "import asyncio\nasync def main():\n    print('ready', flush=True)\n" \
          "    await asyncio.sleep(60)\nasyncio.run(main())\n"
    with AgentProcess.script(src, agent_args=["--listen", "tcp://127.0.0.1:0", "--token-file",
                                              str(control), "--read-token-file",
                                              str(read)]) as proc:
        proc.wait_for_line("ready")
        from introspect.client.connection import Client
        from introspect.protocol import discovery

        ann = wait_until(lambda: next((a for a in discovery.list_agents() if a.pid == proc.pid
                                       and a.tcp), None), message="tcp announcement")
        with Client(ann.tcp, token="read-token-123456").connect() as client:
            with pytest.raises(AgentError, match="control role"):
                client.exact_accounting(5)
            assert client.stuck() == []
