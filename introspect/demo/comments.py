"""Story "comments stopped mid-event" (seed 002).

A supervisor runs 4 `comments_worker` tasks that take comments from `CommentsService.inbox` and
publish them. At the scheduled time a message of an unexpected type arrives (`reaction_batch`,
without `user_id`). The worker that takes it crashes with `UnexpectedMessage` (caused by
`KeyError: 'user_id'`); the message was not acknowledged, so it is redelivered and crashes the
next worker. Like an OTP supervisor with the default `max_restarts` of 3 in 5 seconds, the naive
supervisor gives up on the 4th crash and stops all its workers: from then on there are no
comments workers, while the feed keeps filling the inbox and everything else looks fine.

`restart_workers()` (also `introspect.demo.restart_comments_workers()` from the console) moves
the poison message to `dead_letters` and starts a new supervisor; the workers then keep running.
The next cycle starts a new supervisor too, if none is running.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from introspect.demo.metrics import COMMENTS_PROCESSED
from introspect.demo.runtime import StoryContext
from introspect.demo.schedule import Phase

STORY = "comments"
WORKERS = 4
MAX_RESTARTS = 3
MAX_RESTARTS_WINDOW = 5.0  # demo seconds, like OTP's max_seconds
RESTART_BACKOFF = 0.2
COMMENT_INTERVAL = 0.1  # the feed publishes 10 comments/s
PUBLISH_SECONDS = 0.02
POISON_ARRIVES = 30.0

Message = dict[str, Any]

POISON_MESSAGE: Message = {
    "type": "reaction_batch",
    "event_id": "live-360-concert",
    "reactions": {"heart": 1520, "fire": 310},
}


class UnexpectedMessage(Exception):
    """A comments worker received a message it does not know how to handle."""


CRASHES_KEPT = 100


@dataclass(frozen=True)
class CrashReport:
    time: float
    worker: int
    task: asyncio.Task[None]  # ended with `exception`, which the supervisor retrieved
    exception: BaseException
    message: Message | None


class CommentsService:
    def __init__(
        self,
        ctx: StoryContext,
        workers: int = WORKERS,
        max_restarts: int = MAX_RESTARTS,
    ) -> None:
        self.ctx = ctx
        self.worker_count = workers
        self.max_restarts = max_restarts
        # Comments from the MQTT topic, waiting for a worker: unbounded.
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.in_flight: dict[int, Message] = {}  # worker -> message taken but not acknowledged
        self.workers: dict[int, asyncio.Task[None]] = {}
        self.supervisor: asyncio.Task[None] | None = None
        self.crashes: deque[CrashReport] = deque(maxlen=CRASHES_KEPT)
        self.restarts = 0  # by the current supervisor
        self.gave_up = False
        self.dead_letters: list[Message] = []
        self.published = 0
        self._comment_ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.start_feed()
        self.ensure_running()

    def start_feed(self) -> None:
        self.ctx.spawn(comments_feed(self), "comments-feed")

    def ensure_running(self) -> bool:
        """Start a supervisor (and its workers) unless one is running. True if started."""
        if self.supervisor is not None and not self.supervisor.done():
            return False
        self.restarts = 0
        self.gave_up = False
        self.supervisor = self.ctx.spawn(comments_supervisor(self), "comments-supervisor")
        return True

    def restart_workers(self) -> str:
        """The console's fix: drop the poison message, bring the workers back."""
        removed = self.quarantine_unexpected_messages()
        started = self.ensure_running()
        if not started:
            return f"comments supervisor already running ({self.live_workers()} live workers)"
        return (
            f"comments supervisor restarted with {self.worker_count} workers; "
            f"{removed} unexpected message(s) moved to dead_letters"
        )

    def quarantine_unexpected_messages(self) -> int:
        kept: list[Message] = []
        removed = 0
        while not self.inbox.empty():
            message = self.inbox.get_nowait()
            self.inbox.task_done()
            if is_comment(message):
                kept.append(message)
            else:
                self.dead_letters.append(message)
                removed += 1
        for message in kept:
            self.inbox.put_nowait(message)
        return removed

    def live_workers(self) -> int:
        return sum(1 for task in self.workers.values() if not task.done())

    # -- used by the supervisor --------------------------------------------------------------

    def start_worker(self, worker: int) -> asyncio.Task[None]:
        task = self.ctx.spawn(comments_worker(worker, self), f"comments-worker-{worker}")
        self.workers[worker] = task
        return task

    def redeliver(self, worker: int) -> Message | None:
        """Put the message a crashed worker had not acknowledged back in the inbox."""
        message = self.in_flight.pop(worker, None)
        if message is not None:
            self.inbox.put_nowait(message)
        return message

    def inject_poison(self) -> None:
        self.inbox.put_nowait(dict(POISON_MESSAGE))

    def next_comment(self) -> Message:
        comment_id = next(self._comment_ids)
        return {
            "type": "comment",
            "id": comment_id,
            "user_id": 1000 + comment_id % 97,
            "text": f"great show! #{comment_id}",
        }

    def phases(self) -> list[Phase]:
        return [
            Phase(
                0.0,
                STORY,
                f"cycle reset: dead-letter any poison message, ensure {self.worker_count} "
                "comments workers run",
                self.restart_workers,
            ),
            Phase(
                POISON_ARRIVES,
                STORY,
                "poison message arrives; workers will crash",
                self.inject_poison,
            ),
        ]


def is_comment(message: Message) -> bool:
    return message.get("type") == "comment" and "user_id" in message


def render_comment(message: Message) -> str:
    try:
        return f"{message['user_id']}: {message['text']}"
    except KeyError as exc:
        raise UnexpectedMessage(f"comments worker cannot handle message {message!r}") from exc


async def comments_feed(comments: CommentsService) -> None:
    """The MQTT subscription: a steady stream of comments from the viewers."""
    while True:
        comments.inbox.put_nowait(comments.next_comment())
        await comments.ctx.clock.sleep(COMMENT_INTERVAL)


async def comments_worker(worker: int, comments: CommentsService) -> None:
    """Aggregates, filters and publishes comments; crashes on a message it does not expect."""
    while True:
        message = await comments.inbox.get()
        comments.in_flight[worker] = message
        await publish_comment(comments, render_comment(message))
        del comments.in_flight[worker]  # acknowledged
        comments.inbox.task_done()


async def publish_comment(comments: CommentsService, rendered: str) -> None:
    await comments.ctx.clock.sleep(PUBLISH_SECONDS)  # the round trip to the MQTT broker
    comments.published += 1
    COMMENTS_PROCESSED.inc()


async def comments_supervisor(comments: CommentsService) -> None:
    """A naive one-for-one supervisor: restarts a crashed worker, gives up (and stops all its
    workers) after `max_restarts` restarts within `MAX_RESTARTS_WINDOW` demo seconds."""
    ctx = comments.ctx
    workers = range(1, comments.worker_count + 1)
    running = {comments.start_worker(worker): worker for worker in workers}
    restart_times: list[float] = []
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                worker = running.pop(task)
                if task.cancelled() or task.exception() is None:
                    continue
                exc = task.exception()  # retrieved: the crash is handled, not lost
                assert exc is not None
                message = comments.redeliver(worker)
                comments.crashes.append(
                    CrashReport(time.time(), worker, task, exc, message)
                )
                now = asyncio.get_running_loop().time()
                window = ctx.clock.scaled(MAX_RESTARTS_WINDOW)
                restart_times = [t for t in restart_times if now - t < window]
                if len(restart_times) >= comments.max_restarts:
                    comments.gave_up = True
                    ctx.say(
                        STORY,
                        f"{task.get_name()} crashed ({type(exc).__name__}); supervisor gave up "
                        f"after {comments.max_restarts} restarts: no comments workers left",
                    )
                    return
                restart_times.append(now)
                comments.restarts += 1
                ctx.say(
                    STORY,
                    f"{task.get_name()} crashed ({type(exc).__name__}: {exc}); "
                    f"restart {comments.restarts}/{comments.max_restarts}",
                )
                await ctx.clock.sleep(RESTART_BACKOFF)
                running[comments.start_worker(worker)] = worker
    finally:
        # Giving up (or being cancelled) takes the whole group down, as in OTP.
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        for worker in list(comments.in_flight):
            comments.redeliver(worker)  # unacknowledged messages are delivered again
