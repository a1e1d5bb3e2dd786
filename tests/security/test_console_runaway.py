"""`while True: pass` typed in the console must not take the program's event loop for good:
Ctrl-C, leaving the console and the optional time limit each get the loop back, and a
heartbeat task of the program keeps beating afterwards (ground truth: its own output)."""

from __future__ import annotations

import json
import subprocess
import sys

import pexpect
import pytest

from tests.console.support import PROMPT, run_line, spawn_console
from tests.support.procs import AgentProcess, wait_until

APP = """
import asyncio, introspect

async def heartbeat():
    n = 0
    while True:
        n += 1
        print(f"beat {n}", flush=True)
        await asyncio.sleep(0.05)

async def main():
    beating = asyncio.create_task(heartbeat(), name="heartbeat")
    await asyncio.sleep(3600)

introspect.start(console=True)
asyncio.run(main())
"""
SPIN = "print('spinning') or exec('while True: pass')"


def last_beat(app: AgentProcess) -> int:
    beats = [int(line.split()[1]) for line in list(app.stdout) if line.startswith("beat ")]
    return beats[-1] if beats else 0


def loop_blocked_for(app: AgentProcess) -> float:
    out = subprocess.run([sys.executable, "-m", "introspect", "snapshot", str(app.pid),
                          "--json"], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)["loop"]["blocked_for_seconds"] if out.returncode == 0 else 0


def start_spinning(app: AgentProcess, child: pexpect.spawn) -> int:
    """Type the runaway line; return the last beat once the loop is seen held by it."""
    child.sendline(SPIN)
    child.expect_exact("spinning")
    wait_until(lambda: loop_blocked_for(app) >= 1.0, message="the loop held by the console")
    return last_beat(app)


def assert_beating_after(app: AgentProcess, beat: int) -> None:
    wait_until(lambda: last_beat(app) > beat + 10, message="the heartbeat beating again")
    assert app.proc.poll() is None
    assert "Traceback" not in "".join(app.stderr)


@pytest.fixture
def app(request):
    env = getattr(request, "param", {})
    with AgentProcess.script(APP, under_run=False, env=env) as proc:
        proc.wait_for_line("beat 1")
        proc.wait_for_agent()
        yield proc


def test_ctrl_c_stops_a_runaway_evaluation(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    beat = start_spinning(app, child)
    child.sendcontrol("c")
    child.expect_exact("KeyboardInterrupt: Ctrl-C stopped the running code")
    child.expect_exact(PROMPT)
    assert_beating_after(app, beat)
    assert run_line(child, "6 * 7").strip() == "42"  # the session carries on
    child.sendeof()
    child.expect(pexpect.EOF)


def test_leaving_the_console_stops_a_runaway_evaluation(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    beat = start_spinning(app, child)
    child.close(force=True)  # the client is gone (killed): its code must not run on
    assert_beating_after(app, beat)


# 8 s: the loop must be seen held (blocked >= 1 s, by a snapshot from a new process, which
# takes a second or more to start on a loaded machine) before the limit frees it.
@pytest.mark.parametrize("app", [{"INTROSPECT_CONSOLE_TIME_LIMIT": "8"}], indirect=True)
def test_the_time_limit_stops_a_runaway_evaluation(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    beat = start_spinning(app, child)
    child.expect_exact("ran past the console time limit")
    child.expect_exact(PROMPT)
    assert_beating_after(app, beat)
    # awaiting code is stopped by the limit too, through cancellation
    assert "time limit" in run_line(child, "await asyncio.sleep(60)")
    child.sendeof()
    child.expect(pexpect.EOF)


def test_an_interrupt_never_reaches_the_programs_own_code(app, tmp_path):
    """Console code that keeps yielding to the program's tasks, interrupted many times: the
    exception only ever lands in the console's own steps."""
    child = spawn_console(str(app.pid), tmp_path)
    for _ in range(5):
        beat = last_beat(app)
        child.sendline("while True: await asyncio.sleep(0); sum(range(20000))")
        child.sendline("")
        wait_until(lambda b=beat: last_beat(app) > b + 3, message="the program running alongside")
        child.sendcontrol("c")
        child.expect("KeyboardInterrupt")
        child.expect_exact(PROMPT)
    beat = last_beat(app)
    assert_beating_after(app, beat)
    child.sendeof()
    child.expect(pexpect.EOF)
