"""Queues with owners: the kinds that consume and produce a queue, and the name the code binds
it to, against a program that knows who does what."""

from __future__ import annotations

import asyncio
import time

import pytest

from introspect.agent.collectors.queue_owners import NowaitSampler
from introspect.agent.collectors.tasks import TaskCollector
from tests.support.procs import AgentProcess, wait_until

PROGRAM = """
    import asyncio, time

    class Gateway:
        def __init__(self):
            self.outbox = asyncio.Queue()

    inbox = None

    async def signal_gateway(gateway):
        while True:
            item = await inbox.get()
            time.sleep(0.05)  # busy, never waiting: the queue backs up
            await asyncio.sleep(0.2)
            gateway.outbox.put_nowait(item)

    async def sensor():
        while True:
            inbox.put_nowait("reading")
            await asyncio.sleep(0.02)

    async def operator():
        while True:
            await inbox.put("command")
            await asyncio.sleep(0.05)

    async def archiver(gateway):
        while True:
            await gateway.outbox.get()  # only ever waits: seen through the queue's getters

    async def main():
        global inbox
        inbox = asyncio.Queue()
        gateway = Gateway()
        keep = [asyncio.create_task(signal_gateway(gateway)), asyncio.create_task(sensor()),
                asyncio.create_task(operator()), asyncio.create_task(archiver(gateway))]
        print("running", flush=True)
        await asyncio.gather(*keep)
    asyncio.run(main())
"""


def test_snapshot_names_consumers_producers_and_the_variable() -> None:
    with AgentProcess.script(PROGRAM) as proc:
        proc.wait_for_line("running")

        def queues() -> dict | None:
            rows = {q.bound_to: q for q in proc.snapshot().queues}
            inbox, outbox = rows.get("__main__.inbox"), rows.get("Gateway.outbox")
            if inbox is None or outbox is None or len(inbox.producers) < 2 \
                    or not outbox.consumers or not outbox.producers:
                return None
            return {"inbox": inbox, "outbox": outbox}

        rows = wait_until(queues, timeout=30, interval=0.3, message="both queues with owners")
    inbox, outbox = rows["inbox"], rows["outbox"]
    assert inbox.consumers == ["__main__.signal_gateway"], inbox
    assert inbox.producers == ["__main__.operator", "__main__.sensor"], inbox
    assert inbox.getters == 0 and inbox.length > 0  # busy consumer, backed-up queue
    assert inbox.bound_to == "__main__.inbox" and ".py:" in inbox.created_at, inbox  # site kept
    assert outbox.consumers == ["__main__.archiver"], outbox
    assert outbox.producers == ["__main__.signal_gateway"], outbox


def test_get_put_nowait_sample_once_per_arming_and_stay_transparent() -> None:
    # In process: the one-shot wrappers themselves; the originals are back after each sample.
    noted: list[tuple[str, bool]] = []

    class Owners:
        def knows(self, queue: object, kind: str, consumer: bool) -> bool:
            return False

        def note(self, queue: object, kind: str, consumer: bool) -> None:
            noted.append((kind.rsplit(".", 1)[-1], consumer))

    originals = {name: asyncio.Queue.__dict__[name] for name in ("get_nowait", "put_nowait")}
    collector = TaskCollector(lambda *a: None, lambda *a: None)
    sampler = NowaitSampler(lambda: Owners())
    got: list[int] = []
    try:
        async def producer(queue: asyncio.Queue[int]) -> None:
            for i in range(5):
                assert queue.put_nowait(i) is None

        async def consumer(queue: asyncio.Queue[int]) -> None:
            while not queue.empty():
                got.append(queue.get_nowait())

        async def main() -> None:
            asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
            queue: asyncio.Queue[int] = asyncio.Queue()
            for rounds in range(2):
                sampler.arm(time.monotonic() + rounds * 3600)  # each arming: one sample
                assert asyncio.Queue.__dict__["put_nowait"] is not originals["put_nowait"]
                await asyncio.create_task(producer(queue))
                await asyncio.create_task(consumer(queue))
                assert {name: asyncio.Queue.__dict__[name] for name in originals} == originals
            sampler.arm(time.monotonic() + 3600 + 0.01)  # within the period: not armed
            assert asyncio.Queue.__dict__["get_nowait"] is originals["get_nowait"]
            with pytest.raises(asyncio.QueueEmpty):
                queue.get_nowait()  # errors pass through

        asyncio.run(main())
    finally:
        for cls, name, original in sampler.saved:
            setattr(cls, name, original)
    assert got == list(range(5)) * 2
    assert noted == [("producer", False), ("consumer", True)] * 2


def test_an_apps_own_wrapper_is_left_alone() -> None:
    sampler = NowaitSampler(lambda: None)
    original = asyncio.Queue.__dict__["get_nowait"]

    def apps_wrapper(self: asyncio.Queue[int]) -> int:
        return original(self)

    asyncio.Queue.get_nowait = apps_wrapper  # type: ignore[method-assign]
    try:
        sampler.arm(time.monotonic())
        assert asyncio.Queue.__dict__["get_nowait"] is apps_wrapper
    finally:
        for cls, name, saved in sampler.saved:
            setattr(cls, name, saved)
