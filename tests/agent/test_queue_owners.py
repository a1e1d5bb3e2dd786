"""Queues with owners: the kinds that consume and produce a queue, and the name the code binds
it to, against a program that knows who does what."""

from __future__ import annotations

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
