"""/metrics answers while the app's loop is saturated (a thread would starve for the GIL) and
while it is blocked (a server on the loop could not answer). Generous deadlines only: the
latency numbers are measured in benchmarks/scrape_under_load.py.
"""

from __future__ import annotations

import pytest

from tests.metrics.support import AgentProcess, metrics_url, sample_value, scrape

DEADLINE = 5.0

SATURATED = """
import asyncio

async def producer(q):
    while True:
        await q.put(1)

async def consumer(q):
    while True:
        await q.get()

async def main():
    for _ in range(200):  # workload A: every message is a task switch
        q = asyncio.Queue(maxsize=1)
        asyncio.create_task(producer(q)); asyncio.create_task(consumer(q))
    await asyncio.sleep(0.5)
    print("saturated", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""

BLOCKED = """
import asyncio, time

async def main():
    await asyncio.sleep(0.5)  # let the agent's beat hand /metrics to this loop first
    print("blocking", flush=True)
    if HOW == "sleep":
        time.sleep(120)            # blocked in a call that releases the GIL
    else:
        end = time.monotonic() + 120
        while time.monotonic() < end:  # blocked in pure Python: holds the GIL
            pass

asyncio.run(main())
"""


def test_metrics_answers_while_the_loop_is_saturated() -> None:
    with AgentProcess.script(SATURATED, agent_args=["--metrics-port", "0"]) as proc:
        url = metrics_url(proc)
        proc.wait_for_line("saturated")
        latencies = []
        for _ in range(8):
            body, seconds = scrape(url, timeout=DEADLINE)
            latencies.append(seconds)
            assert "python_asyncio_tasks{" in body
        assert max(latencies) < DEADLINE
        # the loop itself answered: the thread would have had to wait for the GIL
        assert sample_value(body, "introspect_agent_scrapes_total", served_by="loop") >= 7
        producers = sample_value(body, "python_asyncio_tasks", kind="__main__.producer")
        assert producers == 200


@pytest.mark.parametrize("how", ["sleep", "spin"])
def test_metrics_answers_while_the_loop_is_blocked(how: str) -> None:
    source = f"HOW = {how!r}\n{BLOCKED}"
    with AgentProcess.script(source, agent_args=["--metrics-port", "0"]) as proc:
        url = metrics_url(proc)
        proc.wait_for_line("blocking")
        for _ in range(3):
            body, seconds = scrape(url, timeout=DEADLINE)
            assert seconds < DEADLINE
        assert sample_value(body, "introspect_agent_scrapes_total", served_by="thread") >= 1
        blocked_for = sample_value(body, "python_asyncio_loop_blocked_for_seconds")
        assert blocked_for is not None and blocked_for > 0.1  # the stuck loop, seen live
