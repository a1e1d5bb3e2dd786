"""The agent is a good citizen on the host's stderr: repeated blocking reports are aggregated
(first per location, then one summary line with counts), imports during start-up are not
reported unless asked, and everything from the observed process is escaped."""

from __future__ import annotations

from tests.support.procs import AgentProcess, wait_until

SLOW_REQUESTS = r'''
import asyncio, time

def slow_query():
    time.sleep(0.15)

async def handler():
    slow_query()

async def main():
    for n in range(20):
        await asyncio.create_task(handler())
        await asyncio.sleep(0.05)
    print("done", flush=True)
    print("after", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
'''

HOSTILE_NAME = r'''
import asyncio, time

async def handler():
    time.sleep(0.2)

async def main():
    await asyncio.sleep(0.1)
    name = "evil\x1b]52;c;cHduZWQ=\x07\x1b[2J\u202eexe.txt"
    await asyncio.create_task(handler(), name=name)
    print("done", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
'''

IMPORT_AT_START = r'''
import asyncio, pathlib, sys

pathlib.Path("slow_module.py").write_text("import time\ntime.sleep(0.3)\n")
sys.path.insert(0, ".")

async def main():
    import slow_module  # a worker's start-up importing its app inside the running loop
    print("imported", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
'''


def _agent_lines(proc: AgentProcess) -> list[str]:
    return [line for line in "".join(proc.stderr).splitlines() if line.startswith("introspect")]


def test_twenty_slow_requests_make_a_few_lines_and_a_summary() -> None:
    with AgentProcess.script(SLOW_REQUESTS, env={"INTROSPECT_HOST_LOG": "summary=1"}) as proc:
        proc.wait_for_line("after", timeout=30)
        wait_until(lambda: [line for line in _agent_lines(proc) if "more reports" in line],
                   timeout=10, message="a summary line")
        lines = _agent_lines(proc)
        summaries = [line for line in lines if "more reports" in line]
        firsts = [line for line in lines if line not in summaries]
        # the first block: its begin and end lines and two lints; every later block counted
        assert len(firsts) <= 4, firsts
        assert len(summaries) <= 6, summaries  # one per second at most, over ~5 s
        counted = sum(int(line.split()[1]) for line in summaries)
        assert counted >= 19, summaries
        assert all("app.py:5 slow_query" in line for line in summaries), summaries


def test_all_reports_every_block() -> None:
    with AgentProcess.script(SLOW_REQUESTS, env={"INTROSPECT_HOST_LOG": "all"}) as proc:
        proc.wait_for_line("done", timeout=30)
        wait_until(lambda: sum("was blocked" in line for line in _agent_lines(proc)) >= 15,
                   timeout=10, message="one line per block")


def test_task_names_reach_stderr_escaped() -> None:
    with AgentProcess.script(HOSTILE_NAME) as proc:
        proc.wait_for_line("done", timeout=30)
        wait_until(lambda: any("was blocked" in line for line in _agent_lines(proc)),
                   timeout=10, message="the block reported")
        text = "".join(proc.stderr)
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in text
        assert "\\x1b]52" in text


def test_imports_during_start_up_are_not_reported_unless_asked() -> None:
    with AgentProcess.script(IMPORT_AT_START) as proc:
        proc.wait_for_line("imported", timeout=30)
        assert proc.snapshot().loop is not None  # the agent is up and answering
        assert not [line for line in _agent_lines(proc) if "blocked" in line]
    with AgentProcess.script(IMPORT_AT_START,
                             env={"INTROSPECT_HOST_LOG": "summary,imports"}) as proc:
        proc.wait_for_line("imported", timeout=30)
        wait_until(lambda: [line for line in _agent_lines(proc) if "blocked" in line],
                   timeout=10, message="the import's block reported when asked")
