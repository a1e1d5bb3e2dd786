"""Lint findings are counted in `introspect_lint_findings_total{lint}` (issue 6): every lint
reports from the start (0 included), and a finding shows up as soon as it is made."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import AgentProcess, wait_until

BLOCKS_ONCE = r'''
import asyncio, sys, time
def sync_db_query():
    time.sleep(0.3)
async def main():
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    sync_db_query()
    print("blocked once", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
'''


def lint_counts(url: str) -> dict[str, float]:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        if family.name == "introspect_lint_findings":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["lint"]] = sample.value
    return counts


def test_lint_findings_are_exported_per_lint() -> None:
    with AgentProcess.script(BLOCKS_ONCE, agent_args=["--metrics-port", "0"]) as proc:
        proc.wait_for_line("ready")
        url = wait_until(lambda: proc.snapshot().agent.metrics, message="the metrics URL")
        before = lint_counts(url)
        assert {"loop_blocked", "task_never_yields", "executor_saturated"} <= set(before)
        assert before["loop_blocked"] == 0
        proc.proc.stdin.write("go\n")
        proc.proc.stdin.flush()
        proc.wait_for_line("blocked once")
        after = wait_until(lambda: (lambda c: c if c.get("loop_blocked", 0) >= 1 else None)(
            lint_counts(url)), message="loop_blocked counted")
        assert after["loop_blocked"] == 1
        assert after["exception_never_retrieved"] == 0
