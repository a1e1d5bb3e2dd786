"""The detectors are typed parts of the agent: exact accounting does not need the sampler, each
part states its own limitations, and a misconfigured part stops `start()` loudly."""

from __future__ import annotations

import pytest

from introspect.errors import UserError
from tests.support.procs import AgentProcess, wait_until

PROGRAM = """
    import asyncio

    async def stepper():
        while True:
            await asyncio.sleep(0.01)

    async def main():
        asyncio.create_task(stepper(), name="stepper")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def test_exact_accounting_runs_with_sampling_switched_off() -> None:
    with AgentProcess.script(PROGRAM, env={"INTROSPECT_SAMPLING": "0"}) as proc:
        proc.wait_for_line("ready")
        notes = wait_until(lambda: proc.snapshot().agent.limitations, message="limitations")
        assert "busy-time sampling: disabled (INTROSPECT_SAMPLING=0)" in notes, notes
        with proc.client() as client:
            assert "exact accounting on" in client.exact_accounting(0.5)
            report = wait_until(lambda: (r := client.exact_report()) and not r.running and r,
                                message="the finished exact session")
            assert any(t.name == "stepper" and t.steps > 0 for t in report.tasks), report.tasks


def test_a_lint_typo_stops_start_with_a_clear_error() -> None:
    import introspect

    try:
        with pytest.raises(UserError, match="INTROSPECT_LINTS"):
            introspect.start(lints="-no_such_lint")
    finally:
        introspect.stop()
    assert introspect.get_agent() is None or not introspect.get_agent().running
