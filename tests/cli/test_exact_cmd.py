"""`introspect exact`: exact accounting from the command line against a program that knows
how many steps each of its tasks takes; clear one-line errors for what can't be done."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.procs import AgentProcess

PROGRAM = """
    import asyncio, sys

    async def ticker(period):
        while True:
            await asyncio.sleep(period)

    async def main():
        tickers = [asyncio.create_task(ticker(0.01), name=f"fast-{i}") for i in range(3)]
        slow = asyncio.create_task(ticker(0.2), name="slow")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def introspect(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "introspect", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_exact_accounts_for_the_seconds_asked_and_reports_per_kind_and_task() -> None:
    with AgentProcess.script(PROGRAM) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        out = introspect("exact", str(proc.pid), "--seconds", "1.5", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        text = introspect("exact", str(proc.pid), "--last")
    assert report["running"] is False
    assert report["implementation"] == "c"
    kind = report["kinds"]["__main__.ticker"]
    tasks = {t["name"]: t for t in report["tasks"]}
    # 1.5 s of sleep(0.01) is at most ~150 steps per fast ticker (the loop may run late),
    # sleep(0.2) at most 8 for the slow one
    for i in range(3):
        assert 30 <= tasks[f"fast-{i}"]["steps"] <= 152, tasks[f"fast-{i}"]
    assert 3 <= tasks["slow"]["steps"] <= 8, tasks["slow"]
    assert kind["steps"] == sum(t["steps"] for t in tasks.values())
    assert text.returncode == 0, text.stderr
    assert "__main__.ticker" in text.stdout
    assert "fast-0" in text.stdout and "slow" in text.stdout
    assert "exact accounting (c): finished" in text.stdout


def test_exact_errors_are_one_line() -> None:
    with AgentProcess.script(PROGRAM) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        never_ran = introspect("exact", str(proc.pid), "--last")
        too_long = introspect("exact", str(proc.pid), "--seconds", "601")
    gone = introspect("exact", "999999999", "--seconds", "1")
    for result, needle in ((never_ran, "no exact accounting has run"),
                           (too_long, "--seconds must be"), (gone, "999999999")):
        assert result.returncode != 0
        assert needle in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
