"""`python -m introspect.demo` as users and the agent run it: a real child process."""

from __future__ import annotations

import signal

import pytest

from introspect.demo.service import DemoService
from tests.demo.support import unexpected_tracebacks


def expected_phase_lines() -> list[str]:
    return [f"demo: {phase.story}: {phase.message}" for phase in DemoService().phases()]


def test_a_full_cycle_at_speed_20_shows_every_phase_and_exits_cleanly(demo_process) -> None:
    demo = demo_process("--speed", "20", "--duration", "8")
    assert demo.wait_exit(timeout=60) == 0
    lines = demo.lines
    for expected in ["demo: cycle: cycle 1 starts", *expected_phase_lines()]:
        assert expected in lines, f"missing phase line {expected!r}"
    assert any("supervisor gave up after 3 restarts" in line for line in lines)
    assert "demo: cycle: cycle 2 starts" in lines
    stderr = demo.stderr()
    assert "Task was destroyed" not in stderr
    assert "Exception ignored" not in stderr
    assert unexpected_tracebacks(lines) == []
    assert "DemoThreadError" in stderr
    assert "DemoCallbackError" in stderr
    assert "Exception in thread demo-report-exporter" in stderr


def test_quiet_run_prints_nothing(demo_process) -> None:
    demo = demo_process("--quiet", "--duration", "1")
    assert demo.wait_exit(timeout=30) == 0
    assert demo.lines == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_demo_cleanly(demo_process, signum: signal.Signals) -> None:
    demo = demo_process("--speed", "20")
    demo.wait_for_line(lambda line: line.startswith("demo: lock:"), timeout=30)
    demo.popen.send_signal(signum)
    assert demo.wait_exit(timeout=30) == 0
    stderr = demo.stderr()
    assert "Task was destroyed" not in stderr
    assert "KeyboardInterrupt" not in stderr
    assert unexpected_tracebacks(demo.lines) == []


def test_bad_speed_is_a_usage_error(demo_process) -> None:
    demo = demo_process("--speed", "0")
    assert demo.wait_exit(timeout=30) == 2
    assert any("must be positive" in line for line in demo.lines)
