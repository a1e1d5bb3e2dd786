"""Who may open a console: off unless enabled, control role only, refusals audited; and a
program without an event loop still gets one (on a console thread)."""

from __future__ import annotations

import pytest

from tests.console.support import AgentProcess, audit_lines, run_piped, tcp_target

SERVE = """
import asyncio, introspect
async def main():
    introspect.start()
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def tcp_host(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tcp")
    env = {"INTROSPECT_LISTEN": "tcp://127.0.0.1:0", "INTROSPECT_TOKEN": "control-secret-012345",
           "INTROSPECT_READ_TOKEN": "read-secret-0123456", "INTROSPECT_CONSOLE": "1",
           "INTROSPECT_AUDIT_LOG": str(tmp / "audit.log")}
    with AgentProcess.script(SERVE, under_run=False, env=env) as proc:
        proc.wait_for_line("ready")
        proc.audit = tmp / "audit.log"
        yield proc, tcp_target(proc)


def test_a_read_only_token_is_refused(tcp_host):
    proc, target = tcp_host
    done = run_piped(target, "1 + 1\n", INTROSPECT_TOKEN="read-secret-0123456")
    assert done.returncode == 4
    assert done.stderr.startswith("introspect: error: ")
    assert "control role" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    refused = [e for e in audit_lines(proc.audit) if e["action"] == "console_open"]
    assert refused[-1]["outcome"] == "forbidden" and refused[-1]["role"] == "read"
    assert not any(e["action"] == "console_input" for e in audit_lines(proc.audit))


def test_the_control_token_opens_it_over_tcp(tcp_host):
    proc, target = tcp_host
    done = run_piped(target, "6 * 7\n", INTROSPECT_TOKEN="control-secret-012345")
    assert done.returncode == 0, done.stderr
    assert "42" in done.stdout
    peer = [e for e in audit_lines(proc.audit) if e["action"] == "console_input"][-1]["peer"]
    assert peer.startswith("127.0.0.1:")


def test_no_token_no_console(tcp_host):
    _proc, target = tcp_host
    done = run_piped(target, "1\n")
    assert done.returncode == 4 and "requires a token" in done.stderr


def test_the_console_is_off_unless_enabled():
    with AgentProcess.script(SERVE, under_run=False, env={"INTROSPECT_CONSOLE": "0"}) as proc:
        proc.wait_for_line("ready")
        done = run_piped(str(proc.pid), "1\n")
    assert done.returncode != 0
    assert "the console is disabled" in done.stderr and "--console" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_program_without_an_event_loop_gets_a_console_thread():
    threads_only = """
        import threading, time, introspect
        introspect.start(console=True, console_locals={"answer": 42})
        print("ready", flush=True)
        threading.Event().wait(3600)
    """
    with AgentProcess.script(threads_only, under_run=False) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        done = run_piped(str(proc.pid), "await asyncio.sleep(0.01, result=answer)\n"
                                        "import threading; threading.current_thread().name\n")
    assert done.returncode == 0, done.stderr
    assert "no running event loop" in done.stdout
    assert "42" in done.stdout and "'introspect-console'" in done.stdout
