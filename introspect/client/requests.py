"""The request table: each request the agent answers, written once as a `Call` (request
struct -> expected reply type -> what the caller gets), and the two fronts that name them.

`SyncRequests` (mixed into `Client`) and `AsyncRequests` (mixed into `AsyncClient` and the
TUI's live source) give every call the same name and signature; a front only implements
`call()`, i.e. how the bytes move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from introspect.protocol import messages as m
from introspect.protocol.snapshot import QueueRow, Snapshot

R = TypeVar("R")
T = TypeVar("T")

PROFILE_GRACE = 15.0  # seconds on top of a profile's duration before we stop waiting


@dataclass(frozen=True)
class Call(Generic[R, T]):
    request: m.Request
    expect: type[R]
    result: Callable[[R], T]
    timeout: float | None = None  # None: the connection's own timeout


def _same(reply: R) -> R:
    return reply


def _detail(reply: m.Ack) -> str:
    return reply.detail


def snapshot(top_tasks: int = 20) -> Call[m.SnapshotReply, Snapshot]:
    return Call(m.SnapshotRequest(top_tasks=top_tasks), m.SnapshotReply, lambda r: r.snapshot)


def tasks(request: m.TaskListRequest | None = None,
          **filters: Any) -> Call[m.TaskPage, m.TaskPage]:
    return Call(request or m.TaskListRequest(**filters), m.TaskPage, _same)


def task(task_id: int) -> Call[m.TaskDetail, m.TaskDetail]:
    return Call(m.TaskDetailRequest(task_id=task_id), m.TaskDetail, _same)


def thread_stacks() -> Call[m.ThreadStacks, list[m.ThreadStack]]:
    return Call(m.ThreadStacksRequest(), m.ThreadStacks, lambda r: r.threads)


def queues() -> Call[m.QueueList, list[QueueRow]]:
    return Call(m.QueueListRequest(), m.QueueList, lambda r: r.queues)


def dump(max_tasks: int = 10_000, timeout: float | None = None) -> Call[m.DumpReply, m.DumpReply]:
    return Call(m.DumpRequest(max_tasks=max_tasks), m.DumpReply, _same, timeout)


def cancel(task_id: int, message: str | None = None) -> Call[m.Ack, str]:
    return Call(m.CancelTask(task_id=task_id, message=message), m.Ack, _detail)


def gc_collect(generation: int = 2) -> Call[m.Ack, str]:
    return Call(m.GcCollect(generation=generation), m.Ack, _detail)


def exact_accounting(seconds: float) -> Call[m.Ack, str]:
    return Call(m.ExactAccounting(seconds=seconds), m.Ack, _detail)


def exact_report(max_tasks: int = 1000) -> Call[m.ExactReport, m.ExactSessionReport | None]:
    # Passes through whatever the reply's `report` carries (None if none ever ran).
    return Call(m.ExactReportRequest(max_tasks=max_tasks), m.ExactReport, lambda r: r.report)


def stuck(min_tasks: int = 2, limit: int = 20) -> Call[m.StuckReport, list[m.StuckGroup]]:
    return Call(m.StuckRequest(min_tasks=min_tasks, limit=limit), m.StuckReport,
                lambda r: r.groups)


def profile(duration: float = 3.0, rate: int = 100,
            top: int = 15) -> Call[m.ProfileReply, m.ProfileReply]:
    return Call(m.ProfileRequest(duration=duration, rate=rate, top=top), m.ProfileReply, _same,
                duration + PROFILE_GRACE)


def history(max_samples: int = 600) -> Call[m.HistoryReply, list[m.HistorySample]]:
    return Call(m.HistoryRequest(max_samples=max_samples), m.HistoryReply, lambda r: r.samples)


def ping() -> Call[m.Ack, str]:
    return Call(m.Ping(), m.Ack, _detail)


class SyncRequests:
    """Every request as a blocking method; the front implements `call`."""

    def call(self, call: Call[Any, T]) -> T:
        raise NotImplementedError

    def snapshot(self, top_tasks: int = 20) -> Snapshot:
        return self.call(snapshot(top_tasks))

    def tasks(self, request: m.TaskListRequest | None = None, **filters: Any) -> m.TaskPage:
        return self.call(tasks(request, **filters))

    def task(self, task_id: int) -> m.TaskDetail:
        return self.call(task(task_id))

    def thread_stacks(self) -> list[m.ThreadStack]:
        return self.call(thread_stacks())

    def queues(self) -> list[QueueRow]:
        return self.call(queues())

    def dump(self, max_tasks: int = 10_000, timeout: float | None = None) -> m.DumpReply:
        return self.call(dump(max_tasks, timeout))

    def cancel(self, task_id: int, message: str | None = None) -> str:
        return self.call(cancel(task_id, message))

    def gc_collect(self, generation: int = 2) -> str:
        return self.call(gc_collect(generation))

    def exact_accounting(self, seconds: float) -> str:
        return self.call(exact_accounting(seconds))

    def exact_report(self, max_tasks: int = 1000) -> m.ExactSessionReport | None:
        return self.call(exact_report(max_tasks))

    def stuck(self, min_tasks: int = 2, limit: int = 20) -> list[m.StuckGroup]:
        return self.call(stuck(min_tasks, limit))

    def profile(self, duration: float = 3.0, rate: int = 100, top: int = 15) -> m.ProfileReply:
        return self.call(profile(duration, rate, top))

    def history(self, max_samples: int = 600) -> list[m.HistorySample]:
        return self.call(history(max_samples))

    def ping(self) -> str:
        return self.call(ping())


class AsyncRequests:
    """Every request as a coroutine, same names and arguments; the front implements `call`."""

    async def call(self, call: Call[Any, T]) -> T:
        raise NotImplementedError

    async def snapshot(self, top_tasks: int = 20) -> Snapshot:
        return await self.call(snapshot(top_tasks))

    async def tasks(self, request: m.TaskListRequest | None = None,
                    **filters: Any) -> m.TaskPage:
        return await self.call(tasks(request, **filters))

    async def task(self, task_id: int) -> m.TaskDetail:
        return await self.call(task(task_id))

    async def thread_stacks(self) -> list[m.ThreadStack]:
        return await self.call(thread_stacks())

    async def queues(self) -> list[QueueRow]:
        return await self.call(queues())

    async def dump(self, max_tasks: int = 10_000, timeout: float | None = None) -> m.DumpReply:
        return await self.call(dump(max_tasks, timeout))

    async def cancel(self, task_id: int, message: str | None = None) -> str:
        return await self.call(cancel(task_id, message))

    async def gc_collect(self, generation: int = 2) -> str:
        return await self.call(gc_collect(generation))

    async def exact_accounting(self, seconds: float) -> str:
        return await self.call(exact_accounting(seconds))

    async def exact_report(self, max_tasks: int = 1000) -> m.ExactSessionReport | None:
        return await self.call(exact_report(max_tasks))

    async def stuck(self, min_tasks: int = 2, limit: int = 20) -> list[m.StuckGroup]:
        return await self.call(stuck(min_tasks, limit))

    async def profile(self, duration: float = 3.0, rate: int = 100,
                      top: int = 15) -> m.ProfileReply:
        return await self.call(profile(duration, rate, top))

    async def history(self, max_samples: int = 600) -> list[m.HistorySample]:
        return await self.call(history(max_samples))

    async def ping(self) -> str:
        return await self.call(ping())
