"""The story of seed 002, end to end: the demo's comments workers crash and their supervisor
gives up; from `introspect console` we bring them back, and the next snapshot shows them."""

from __future__ import annotations

import sys

import pexpect
import pytest

from tests.console.support import (
    REPO,
    AgentProcess,
    audit_lines,
    run_line,
    spawn_console,
    wait_until,
)

WORKER = "introspect.demo.comments.comments_worker"
SPEED = "5"  # crash at 6 s, next cycle (which would restart them itself) at 12 s


def worker_count(proc: AgentProcess) -> int:
    by_kind = proc.snapshot(top_tasks=0).tasks.by_kind
    return next((k.count for k in by_kind if k.kind == WORKER), 0)


def cycle_starts(proc: AgentProcess) -> int:
    return sum("cycle: cycle" in line and "starts" in line for line in proc.stderr)


@pytest.fixture
def demo(tmp_path):
    audit = tmp_path / "audit.log"
    argv = [sys.executable, "-m", "introspect", "run", "--console", "--",
            sys.executable, "-m", "introspect.demo", "--speed", SPEED]
    with AgentProcess(argv, env={"INTROSPECT_AUDIT_LOG": str(audit)}, cwd=str(REPO)) as proc:
        proc.wait_for_agent()
        proc.audit = audit
        yield proc


def test_restart_the_crashed_comments_workers_from_the_console(demo, tmp_path):
    child = spawn_console(str(demo.pid), tmp_path)
    # an expression over the app's state, and an await, in the demo's own loop
    assert run_line(child, "import introspect.demo as demo; state = demo.current()") == ""
    gateway = run_line(child, "sorted(t.get_name() for t in asyncio.all_tasks() "
                              "if t.get_name().startswith('gateway-producer'))")
    assert gateway.strip() == str([f"gateway-producer-{i}" for i in (1, 2, 3)])
    assert run_line(child, "await asyncio.sleep(0.1, result=state.loop is "
                           "asyncio.get_running_loop())").strip() == "True"

    demo.wait_for_line("supervisor gave up", timeout=30)
    wait_until(lambda: worker_count(demo) == 0, message="no comments workers left")
    cycles = cycle_starts(demo)
    out = run_line(child, "demo.restart_comments_workers()")
    assert "restarted with 4 workers" in out, out
    wait_until(lambda: worker_count(demo) == 4, timeout=5,
               message=f"4 workers in a snapshot; demo said: {''.join(demo.stderr)[-800:]}")
    assert run_line(child, "state.comments.live_workers()").strip() == "4"
    assert cycle_starts(demo) == cycles, "the demo's own cycle restarted them first: too slow"
    child.sendeof()
    child.expect(pexpect.EOF)

    lines = [e.get("line") for e in audit_lines(demo.audit) if e["action"] == "console_input"]
    assert "demo.restart_comments_workers()" in lines
    assert demo.proc.poll() is None
