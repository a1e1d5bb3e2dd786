"""The other stories, in process: each shows what the agent is meant to see."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from prometheus_client import REGISTRY, generate_latest

from introspect.demo.service import DemoService
from tests.demo.support import wait_until


async def spike_grows_the_mailbox() -> None:
    service = DemoService(speed=20, quiet=True)
    gateway = service.gateway
    gateway.start()
    try:
        await wait_until(lambda: gateway.forwarded >= 20)
        assert gateway.inbox.qsize() < 10
        gateway.start_spike()
        sizes: list[int] = []
        for target in (20, 40, 60):
            await wait_until(lambda target=target: gateway.inbox.qsize() >= target)
            sizes.append(gateway.inbox.qsize())
        assert sizes == sorted(sizes)
        await wait_until(gateway.upload_queue.full)
        await wait_until(lambda: len(gateway.upload_queue._putters) >= 2)  # blocked producers
        gateway.end_spike()
        await wait_until(lambda: gateway.inbox.qsize() == 0, timeout=20)
    finally:
        await service.stop()


def test_bottleneck_inbox_grows_during_the_spike_and_drains_after() -> None:
    asyncio.run(spike_grows_the_mailbox())


async def handlers_pile_up_on_the_lock() -> None:
    service = DemoService(speed=20, quiet=True)
    accounts = service.accounts
    accounts.start()
    try:
        accounts.start_reconciliation()
        await wait_until(lambda: accounts.waiting_requests() >= 5)
        waiting = [
            task for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "account_request_handler"
        ]
        assert len(waiting) >= 5
        accounts.finish_ledger_export()
        await wait_until(lambda: accounts.waiting_requests() == 0)
    finally:
        await service.stop()


def test_account_handlers_wait_on_the_same_lock() -> None:
    asyncio.run(handlers_pile_up_on_the_lock())


async def slow_report_blocks_the_loop() -> list[str]:
    service = DemoService(speed=1, quiet=True)
    loop_thread = threading.get_ident()
    seen: list[str] = []
    stop = threading.Event()

    def watchdog() -> None:  # what a blocking-call detector sees from its own thread
        while not stop.is_set():
            frame = sys._current_frames().get(loop_thread)
            if frame is not None and frame.f_code.co_name == "sync_db_query":
                seen.append(frame.f_back.f_code.co_name if frame.f_back else "")
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watchdog, name="test-watchdog")
    thread.start()
    started = time.perf_counter()
    try:
        service.db.start_slow_report()
        await wait_until(lambda: service.db.blocks == 1)  # counted, then blocked, in one step
    finally:
        stop.set()
        thread.join()
        await service.stop()
    assert time.perf_counter() - started >= 1.5
    return seen


def test_slow_report_blocks_the_loop_in_sync_db_query() -> None:
    assert asyncio.run(slow_report_blocks_the_loop()) == ["slow_report_handler"]


def test_the_demo_metrics_are_in_the_default_registry() -> None:
    import introspect.demo.metrics  # noqa: F401

    exposition = generate_latest(REGISTRY).decode()
    assert "# TYPE demo_comments_processed_total counter" in exposition
    assert "# TYPE demo_requests_in_flight gauge" in exposition
    assert "# TYPE demo_request_seconds histogram" in exposition
