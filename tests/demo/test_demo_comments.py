"""The crash-looping comments workers (seed 002), in process."""

from __future__ import annotations

import asyncio

from introspect.demo import restart_comments_workers
from introspect.demo.comments import POISON_MESSAGE, UnexpectedMessage
from introspect.demo.service import DemoService, console_locals, current
from tests.demo.support import wait_until


async def crash_loop_then_console_restart() -> None:
    service = DemoService(speed=50, quiet=True)
    service.make_current()
    comments = service.comments
    comments.start()
    try:
        await wait_until(lambda: comments.live_workers() == 4 and comments.published >= 10)

        comments.inject_poison()
        await wait_until(lambda: comments.gave_up)
        assert comments.supervisor is not None
        await wait_until(comments.supervisor.done)
        assert comments.restarts == 3
        assert len(comments.crashes) == 4  # the first crash and one after each restart
        for crash in comments.crashes:
            assert crash.task.done() and crash.task.exception() is crash.exception
            assert isinstance(crash.exception, UnexpectedMessage)
            assert isinstance(crash.exception.__cause__, KeyError)
            assert "reaction_batch" in str(crash.exception)
            assert crash.task.get_name().startswith("comments-worker-")
            assert crash.task.get_coro().__qualname__ == "comments_worker"
        assert comments.live_workers() == 0

        # The kind stays at zero while the feed keeps filling the inbox.
        backlog = comments.inbox.qsize()
        await wait_until(lambda: comments.inbox.qsize() >= backlog + 20)
        assert comments.live_workers() == 0
        assert not any(
            task.get_coro().__qualname__ == "comments_worker"
            for task in asyncio.all_tasks()
        )

        assert console_locals()["state"] is current() is service
        reply = await asyncio.to_thread(restart_comments_workers)  # from another thread
        assert "restarted" in reply and "1 unexpected message" in reply
        assert comments.dead_letters == [POISON_MESSAGE]
        published = comments.published
        await wait_until(
            lambda: comments.live_workers() == 4 and comments.published >= published + 40
        )
        assert len(comments.crashes) == 4
        assert "already running" in restart_comments_workers()  # from the loop thread
    finally:
        await service.stop()


def test_workers_crash_four_times_supervisor_gives_up_console_brings_them_back() -> None:
    asyncio.run(crash_loop_then_console_restart())
