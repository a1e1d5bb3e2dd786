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


def test_get_put_are_sampled_in_windows_and_asyncio_methods_run_unwrapped_between() -> None:
    import asyncio
    import time

    from introspect.agent.collectors import queue_owners as qo
    from introspect.agent.collectors.tasks import TaskCollector

    originals = (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait)
    t0 = time.monotonic()  # windows close on time.monotonic(): ticks are given the same clock
    owners = qo.QueueOwners()
    sampler = qo.QueueCallSampler(lambda: owners)
    collector = TaskCollector(lambda *a: None, lambda *a: None)

    async def consumer(queue: asyncio.Queue) -> None:
        for _ in range(qo.WINDOW_CALLS):
            await queue.get()

    async def producer(queue: asyncio.Queue) -> None:
        for _ in range(qo.WINDOW_CALLS):
            await queue.put(1)
            await asyncio.sleep(0)

    async def main() -> asyncio.Queue:
        asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
        queue: asyncio.Queue = asyncio.Queue()
        sampler.tick(t0)  # opens a window
        assert asyncio.Queue.get_nowait is not originals[0]
        await asyncio.gather(asyncio.create_task(consumer(queue)),
                             asyncio.create_task(producer(queue)))
        return queue

    try:
        queue = asyncio.run(main())
        # WINDOW_CALLS sampled calls shut the window: asyncio's own methods are back
        assert (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait) == originals
        consumers, producers = owners.owners(queue)
        assert consumers == [f"{__name__}.test_get_put_are_sampled_in_windows_and_asyncio_"
                             "methods_run_unwrapped_between.<locals>.consumer"]
        assert producers and producers[0].endswith("<locals>.producer")
        assert sampler.windows == 1
        due = sampler.next_due()  # WINDOW_PERIOD later, give or take its jitter
        assert t0 + 0.5 * qo.WINDOW_PERIOD <= due < t0 + 1.5 * qo.WINDOW_PERIOD
        sampler.tick(due - 0.01)  # not yet: no new window
        assert sampler.windows == 1 and asyncio.Queue.get_nowait is originals[0]
        sampler.tick(due)  # the next window; time alone closes it too
        assert sampler.windows == 2 and asyncio.Queue.get_nowait is not originals[0]
        sampler.tick(due + qo.WINDOW_SECONDS)
        assert (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait) == originals

        def apps_own(self: asyncio.Queue) -> object:  # an app patching the method itself
            return originals[0](self)

        asyncio.Queue.get_nowait = apps_own  # type: ignore[method-assign]
        sampler.tick(due + 3 * qo.WINDOW_PERIOD)  # never overwritten: sampling stops instead
        assert asyncio.Queue.get_nowait is apps_own and sampler.windows == 2
    finally:
        sampler.stop()
        asyncio.Queue.get_nowait, asyncio.Queue.put_nowait = originals  # type: ignore[method-assign]


def test_a_window_past_its_time_closes_at_its_next_sampled_call() -> None:
    """The watchdog does not wake to shut a window (that would take the GIL from a busy loop):
    the first get/put after WINDOW_SECONDS puts asyncio's own methods back."""
    import asyncio
    import time

    from introspect.agent.collectors import queue_owners as qo

    originals = (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait)
    sampler = qo.QueueCallSampler(lambda: None)
    try:
        now = time.monotonic()
        assert sampler.next_due() <= now  # the first window opens at the first tick
        sampler.tick(now - qo.WINDOW_SECONDS)  # a window whose time is already up
        assert asyncio.Queue.put_nowait is not originals[1]
        due = sampler.next_due() - (now - qo.WINDOW_SECONDS)  # the gap, jittered ±50 %
        assert 0.5 * qo.WINDOW_PERIOD <= due < 1.5 * qo.WINDOW_PERIOD
        asyncio.Queue().put_nowait(1)
        assert (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait) == originals
    finally:
        sampler.stop()
        asyncio.Queue.get_nowait, asyncio.Queue.put_nowait = originals  # type: ignore[method-assign]
    assert sampler.next_due() == float("inf")  # stopped: never due again


def _specialised(function: object, attribute: str) -> bool:
    """Whether the attribute load of `attribute` in `function` has been specialised."""
    import dis

    for instruction in dis.get_instructions(function, adaptive=True):  # type: ignore[arg-type]
        if (instruction.argval == attribute and "ATTR" in instruction.opname) or \
                (instruction.argval == attribute and "METHOD" in instruction.opname):
            return instruction.opname not in ("LOAD_ATTR", "LOAD_METHOD")
    raise AssertionError(f"no load of {attribute!r} in {function}")


def test_windows_back_off_while_they_find_nothing_new_and_reset_when_they_do() -> None:
    import asyncio

    from introspect.agent.collectors import queue_owners as qo
    from introspect.agent.collectors import tasks as task_mod

    owners = qo.QueueOwners()
    sampler = qo.QueueCallSampler(lambda: owners)
    now, gaps = 1000.0, []
    try:
        patience = qo.WINDOW_PATIENCE
        for _ in range(patience + 12):  # windows in which nothing is called
            sampler.tick(now)
            sampler.tick(now + qo.WINDOW_SECONDS)  # time shuts it
            gaps.append(sampler.next_due() - now)
            now = sampler.next_due()
        means = [qo.WINDOW_PERIOD] * patience + [2 ** n * qo.WINDOW_PERIOD for n in (1, 2, 3)]
        for gap, mean in zip(gaps, means, strict=False):  # each gap jittered ±50 % of its mean
            assert 0.5 * mean <= gap < 1.5 * mean, (gaps, means)
        assert 0.5 * qo.WINDOW_PERIOD_MAX <= gaps[-1] < 1.5 * qo.WINDOW_PERIOD_MAX, gaps

        async def consumer(queue: asyncio.Queue) -> None:
            queue.get_nowait()  # inside the window: this task's kind is a new owner

        async def main() -> None:
            collector = task_mod.TaskCollector(lambda *a: None, lambda *a: None)
            asyncio.get_running_loop().set_task_factory(collector.make_factory(None))
            queue: asyncio.Queue = asyncio.Queue()
            queue.put_nowait(1)
            sampler.tick(now)
            await asyncio.create_task(consumer(queue))

        asyncio.run(main())
        assert sampler.windows == patience + 13 and not sampler._open  # its call shut it
        now = sampler.next_due()
        sampler.tick(now)  # the window after one that noted an owner: the short gap again
        assert 0.5 * qo.WINDOW_PERIOD <= sampler.next_due() - now < 1.5 * qo.WINDOW_PERIOD
    finally:
        sampler.stop()


def test_windows_leave_asyncio_queue_specialisable_on_every_version(monkeypatch) -> None:
    # CPython 3.13+ caps the type versions of a class: each window swaps two methods of
    # asyncio.Queue in and out, and past the cap code using queues ran unspecialised for good.
    import asyncio

    from introspect.agent.collectors import queue_owners as qo

    originals = (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait)
    queue: asyncio.Queue = asyncio.Queue()

    def use() -> None:
        queue.put_nowait(1)
        queue.get_nowait()

    sampler = qo.QueueCallSampler(lambda: None)
    now = 1000.0
    try:
        for _ in range(600):  # ~10 minutes of windows at the short gap, each one re-learnt
            sampler.tick(now)
            for _ in range(70):
                use()  # inside the window, then (its first call shuts it) asyncio's own
            now = max(sampler.next_due(), now + qo.WINDOW_SECONDS)
            sampler._idle_windows = 0  # as if every window noted a new owner
        assert (asyncio.Queue.get_nowait, asyncio.Queue.put_nowait) == originals
        for _ in range(200):
            use()
        assert _specialised(use, "put_nowait") and _specialised(use, "get_nowait")
        if qo.MAX_WINDOWS is not None:
            assert sampler.windows == qo.MAX_WINDOWS and sampler.exhausted
        else:
            assert sampler.windows == 600 and not sampler.exhausted
    finally:
        sampler.stop()
        asyncio.Queue.get_nowait, asyncio.Queue.put_nowait = originals  # type: ignore[method-assign]
