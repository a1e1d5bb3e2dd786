"""Queues with owners: the kinds that consume and produce a queue, and the name the code binds
it to, against a program that knows who does what."""

from __future__ import annotations

import asyncio
import types

import pytest

from introspect.agent.collectors import tasks as task_mod
from introspect.agent.collectors.queue_owners import SAMPLE_STRIDE, wrap_queue_methods
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


@pytest.mark.parametrize("accelerated", [True, False], ids=["c", "pure-python"])
def test_get_put_nowait_note_the_running_kind_every_stride_and_stay_transparent(
        accelerated: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # In process: the class-level wrappers themselves (C SampledMethod, or the Python
    # closure when the accelerator is missing), restored at the end.
    if not accelerated:
        monkeypatch.setattr(task_mod, "_accel", None)
    noted: list[tuple[str, bool]] = []

    class Owners:
        def knows(self, queue: object, kind: str, consumer: bool) -> bool:
            return False

        def note(self, queue: object, kind: str, consumer: bool) -> None:
            noted.append((kind.rsplit(".", 1)[-1], consumer))

    collector = TaskCollector(lambda *a: None, lambda *a: None)
    saved = wrap_queue_methods(lambda: Owners())
    try:
        assert all(type(asyncio.Queue.__dict__[name]) is not types.FunctionType
                   for _cls, name, _original in saved) is accelerated
        got: list[int] = []

        async def producer(queue: asyncio.Queue[int]) -> None:
            for i in range(2 * SAMPLE_STRIDE + 1):
                assert queue.put_nowait(i) is None

        async def consumer(queue: asyncio.Queue[int]) -> None:
            while not queue.empty():
                got.append(queue.get_nowait())

        async def main() -> None:
            asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
            queue: asyncio.Queue[int] = asyncio.Queue()
            await asyncio.create_task(producer(queue))
            await asyncio.create_task(consumer(queue))
            with pytest.raises(asyncio.QueueEmpty):
                queue.get_nowait()  # errors pass through

        asyncio.run(main())
    finally:
        for cls, name, original in saved:
            setattr(cls, name, original)
    assert got == list(range(2 * SAMPLE_STRIDE + 1))
    # calls 1, 1 + stride, 1 + 2 * stride of each method are sampled
    assert noted == [("producer", False)] * 3 + [("consumer", True)] * 3
