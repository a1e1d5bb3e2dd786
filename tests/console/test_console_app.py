"""The console against a program that knows its own state (ground truth): output routing,
helpers, exceptions that must not reach the host, Ctrl-C / Ctrl-D / history in a real
terminal, the console's locals from `introspect.start(console_locals=...)`."""

from __future__ import annotations

import re

import pexpect
import pytest

from tests.console.support import (
    AgentProcess,
    audit_lines,
    run_line,
    run_piped,
    spawn_console,
    wait_until,
)

APP = """
import asyncio, sys, introspect

counter = {"n": 0}

async def ticker():
    while True:
        counter["n"] += 1
        if counter["n"] % 20 == 0:
            print(f"app-tick {counter['n']} {type(sys.stdout).__name__}", flush=True)
        await asyncio.sleep(0.01)

async def victim():
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        print("victim was cancelled", flush=True)
        raise

async def main():
    jobs = asyncio.Queue()
    for i in range(3):
        jobs.put_nowait(i)
    introspect.watch(jobs, name="jobs")
    keep = [asyncio.create_task(ticker(), name="ticker"),
            asyncio.create_task(victim(), name="victim")]
    print("ready", flush=True)
    await asyncio.sleep(3600)

introspect.start(console=True, console_locals={"counter": counter, "app_name": "ground-truth"})
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    audit = tmp_path_factory.mktemp("audit") / "audit.log"
    with AgentProcess.script(APP, under_run=False,
                             env={"INTROSPECT_AUDIT_LOG": str(audit)}) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        proc.audit = audit
        yield proc


def counter_now(child: pexpect.spawn) -> int:
    return int(run_line(child, "counter['n']").strip())


def test_expressions_await_and_locals_run_inside_the_programs_loop(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    assert run_line(child, "app_name").strip() == "'ground-truth'"
    assert run_line(child, "await asyncio.sleep(0.1, result=6 * 7)").strip() == "42"
    assert run_line(child, "import threading; threading.current_thread().name").strip() \
        == "'MainThread'"
    assert run_line(child, "asyncio.current_task().get_name()").strip() \
        == "'introspect-console-eval'"
    # a block with continuation lines
    child.sendline("for i in range(3):")
    child.expect_exact("... ")
    child.sendline("    print('line', i)")
    child.expect_exact("... ")
    out = run_line(child, "")
    assert re.findall(r"line \d", out) == ["line 0", "line 1", "line 2"]
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_print_goes_to_the_console_and_the_programs_own_output_stays_its_own(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    ticks_before = sum("app-tick" in line for line in app.stdout)
    out = run_line(child, "print('console-only-marker'); await asyncio.sleep(0.6)")
    assert "console-only-marker" in out
    assert "app-tick" not in out  # the app printed during the evaluation: not into the console
    assert sum("app-tick" in line for line in app.stdout) > ticks_before
    assert not any("console-only-marker" in line for line in app.stdout + app.stderr)
    assert any(line.rstrip().endswith("ConsoleAwareStream") for line in app.stdout)
    child.sendeof()
    child.expect(pexpect.EOF)
    # with no console open, the program's streams are its own again (no cost, no proxy)
    wait_until(lambda: app.stdout[-1].rstrip().endswith("TextIOWrapper"),
               message="sys.stdout restored after the last console closed")


def test_helpers_list_cancel_and_snapshot(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    table = run_line(child, "tasks('victim')")
    assert "victim" in table and "ticker" not in table
    victim_id = int(run_line(child, "tasks('victim')[0].id").strip())
    assert run_line(child, f"task({victim_id}).get_name()").strip() == "'victim'"
    assert "cancellation requested" in run_line(child, f"cancel({victim_id})")
    app.wait_for_line("victim was cancelled")
    queues = run_line(child, "queues()")
    assert re.search(r"^\s+3\s.*\bjobs\b", queues, re.M), queues
    assert run_line(child, "snapshot().tasks.total >= 2").strip() == "True"
    assert "LookupError" in run_line(child, "task(999999)")
    child.sendeof()
    child.expect(pexpect.EOF)


def test_exceptions_in_user_input_never_affect_the_host(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    out = run_line(child, "1/0")
    assert "ZeroDivisionError: division by zero" in out and "<console#" in out
    assert "introspect/agent/console" not in out  # our frames are not the user's business
    assert "ignored" in run_line(child, "raise SystemExit(3)")
    assert "KeyboardInterrupt" in run_line(child, "raise KeyboardInterrupt")
    assert "GeneratorExit" in run_line(child, "raise GeneratorExit")
    assert "SyntaxError" in run_line(child, "def (:")
    assert "RuntimeError" in run_line(child, "class Bad:\n    def __repr__(self): "
                                      "raise RuntimeError('bad repr')\n")
    assert "bad repr" in run_line(child, "Bad()")
    before = counter_now(child)
    wait_until(lambda: counter_now(child) > before + 5, message="the host's counter advancing")
    assert app.proc.poll() is None
    assert "Traceback" not in "".join(app.stderr)
    child.sendeof()
    child.expect(pexpect.EOF)


def test_ctrl_c_cancels_an_await_or_a_block_and_history_recalls_lines(app, tmp_path):
    child = spawn_console(str(app.pid), tmp_path)
    child.sendline("await asyncio.sleep(3600)")
    # Running, not just received (the audit line is written on receipt): a Ctrl-C that beats
    # the evaluation drops the line unrun and says only "KeyboardInterrupt" (seen under load).
    wait_until(lambda: any(row.name == "introspect-console-eval" and row.state == "waiting"
                           for row in app.snapshot(top_tasks=100).tasks.top),
               message="the evaluation awaiting in the program")
    child.sendintr()
    child.expect_exact("KeyboardInterrupt: the evaluation was cancelled")
    child.expect_exact(">>> ")
    child.sendline("if True:")
    child.expect_exact("... ")
    child.sendintr()
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(">>> ")
    assert run_line(child, "20 + 22").strip() == "42"
    child.send("\x1b[A\r")  # up arrow: readline history
    child.expect_exact("42")
    child.expect_exact(">>> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / ".local/state/introspect/console_history").read_text()
    assert "20 + 22" in history


def test_every_line_is_audited_with_who_and_from_where(app):
    done = run_piped(str(app.pid), "x = 'audited-line-marker'\nx.upper()\n")
    assert done.returncode == 0, done.stderr
    assert "'AUDITED-LINE-MARKER'" in done.stdout
    entries = audit_lines(app.audit)
    opened = [e for e in entries if e["action"] == "console_open"]
    assert opened and opened[-1]["outcome"] == "ok" and opened[-1]["role"] == "control"
    assert opened[-1]["peer"].startswith("unix pid=")
    lines = [e["line"] for e in entries if e["action"] == "console_input"]
    assert "x = 'audited-line-marker'" in lines and "x.upper()" in lines
    assert any(e["action"] == "console_close" for e in entries)
