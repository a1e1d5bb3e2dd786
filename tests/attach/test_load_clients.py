"""Load: 50 concurrent streaming clients plus one that stops reading. The agent's memory stays
bounded and every healthy client keeps getting updates. (Host throughput under this load is a
benchmark, benchmarks/attach_load.py, not a timed test.)"""

from __future__ import annotations

import asyncio
import time

import psutil

from introspect.client.connection import AsyncClient
from introspect.protocol import messages as m
from tests.attach.support import RawConnection, host_counter, start_host, unix_target

HEALTHY = 50
INTERVAL = 0.2
UPDATES_EACH = 12


async def stream(target: str, counts: list[int], index: int, gaps: list[float]) -> None:
    client = await AsyncClient(target, timeout=20).connect()
    try:
        last = None
        async for _update in client.subscribe(interval=INTERVAL, top_tasks=20):
            now = time.monotonic()
            if last is not None:
                gaps.append(now - last)
            last = now
            counts[index] += 1
            if counts[index] >= UPDATES_EACH:
                return
    finally:
        await client.close()


def test_fifty_streaming_clients_and_one_stalled_reader():
    with start_host(env={"HOST_SLEEPERS": "3000"}) as proc:
        target = unix_target(proc)
        agent = psutil.Process(proc.pid)
        stalled = RawConnection(target)
        assert isinstance(stalled.handshake(), m.Welcome)
        stalled.send(m.Subscribe(interval=0.1, top_tasks=1000))  # big updates, never read
        rss_start = agent.memory_info().rss
        counter_start = host_counter(proc)
        counts = [0] * HEALTHY
        gaps: list[float] = []

        async def run_all() -> None:
            await asyncio.wait_for(asyncio.gather(
                *(stream(target, counts, i, gaps) for i in range(HEALTHY))), 60)

        rss_samples: list[int] = []

        async def sample_rss() -> None:
            while True:
                rss_samples.append(agent.memory_info().rss)
                await asyncio.sleep(0.1)

        async def main() -> None:
            sampler = asyncio.ensure_future(sample_rss())
            try:
                await run_all()
            finally:
                sampler.cancel()

        asyncio.run(main())
        stalled.close()
        assert counts == [UPDATES_EACH] * HEALTHY
        gaps.sort()
        # healthy clients are not held back by the stalled one: updates keep their pace
        assert gaps[len(gaps) // 2] < INTERVAL * 2.5, gaps[len(gaps) // 2]
        growth = max(rss_samples) - rss_start
        # ~25 updates of ~200 KB went unread; the write buffer holds at most 256 KB of them
        assert growth < 24 * 1024 * 1024, f"agent RSS grew by {growth / 2**20:.1f} MiB"
        assert host_counter(proc) > counter_start
