"""A live agent as a data source: one connection streams `Update`s, a second one answers
requests (task pages, detail, stacks, cancel), so a slow request never stalls the stream.

Reconnects with backoff (Connected | Disconnected(backoff)); a PID target whose process is gone
ends in TargetExited instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

import msgspec

from introspect.client.connection import AsyncClient
from introspect.client.target import Target
from introspect.errors import ConnectError, UserError
from introspect.protocol import discovery
from introspect.protocol import messages as m
from introspect.tui.state.connection import (
    Backoff,
    Connected,
    Connecting,
    ConnectionState,
    Disconnected,
    TargetExited,
)

R = TypeVar("R")


class LiveSession:
    live = True

    def __init__(self, target: Target, label: str, *, token: str | None = None,
                 interval: float = 1.0, top_tasks: int = 20,
                 on_update: Callable[[m.Update], None],
                 on_state: Callable[[ConnectionState], None],
                 backoff: Backoff | None = None) -> None:
        self.target = target
        self.label = label
        self.token = token
        self.interval = interval
        self.top_tasks = top_tasks
        self.on_update = on_update
        self.on_state = on_state
        self.backoff = backoff or Backoff()
        self.role: str | None = None
        self._requests: AsyncClient | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> AsyncClient:
        return AsyncClient(self.target, token=self.token, name="introspect-top")

    def _target_gone(self) -> bool:
        pid = self.target.pid
        if pid is None:
            return False
        if not discovery.pid_alive(pid):
            return True
        import psutil

        try:  # an exited child its parent has not reaped yet still answers kill(pid, 0)
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False

    async def run(self) -> None:
        """Stream until cancelled (or the target exits)."""
        self.on_state(Connecting(self.label))
        while True:
            reason = await self._stream_once()
            if self._target_gone():
                self.on_state(TargetExited(self.label, self.target.pid))
                return
            delay = self.backoff.next_delay()
            self.on_state(Disconnected(self.label, reason, self.backoff.attempt, delay))
            await asyncio.sleep(delay)

    async def _stream_once(self) -> str:
        client = self._client()
        try:
            await client.connect()
            self.role = client.role
            self.backoff.reset()
            await client.send_request(m.Subscribe(interval=self.interval,
                                                  top_tasks=self.top_tasks))
            self.on_state(Connected(self.label, client.role or "read"))
            wait = max(5.0, self.interval * 3 + 2)
            while True:
                message = await client.recv(timeout=wait)
                if isinstance(message, m.Update):
                    self.on_update(message)
                elif isinstance(message, m.ErrorReply):
                    return f"agent refused: {message.message}"
        except UserError as exc:  # ConnectError, AuthError: all one-line
            return str(exc)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return f"unreadable update: {exc}"
        finally:
            await client.close()
            await self._drop_requests()

    async def _drop_requests(self) -> None:
        client, self._requests = self._requests, None
        if client is not None:
            await client.close()

    async def request(self, req: m.Request, expect: type[R]) -> R:
        """One request on the request connection; reconnects it once if it went stale."""
        async with self._lock:
            for attempt in (1, 2):
                if self._requests is None:
                    self._requests = await self._client().connect()
                try:
                    return await self._requests.request(req, expect)
                except ConnectError:
                    await self._drop_requests()
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    async def tasks(self, req: m.TaskListRequest) -> m.TaskPage:
        return await self.request(req, m.TaskPage)

    async def task_detail(self, task_id: int) -> m.TaskDetail:
        return await self.request(m.TaskDetailRequest(task_id=task_id), m.TaskDetail)

    async def thread_stacks(self) -> list[m.ThreadStack]:
        return (await self.request(m.ThreadStacksRequest(), m.ThreadStacks)).threads

    async def cancel(self, task_id: int) -> str:
        return (await self.request(m.CancelTask(task_id=task_id,
                                                message="cancelled from introspect top"),
                                   m.Ack)).detail

    async def gc_collect(self) -> str:
        return (await self.request(m.GcCollect(generation=2), m.Ack)).detail

    async def exact_start(self, seconds: float) -> str:
        """Exact accounting for `seconds` in the target (control role); it ends by itself."""
        return (await self.request(m.ExactAccounting(seconds=seconds), m.Ack)).detail

    async def exact_report(self, max_tasks: int = 1000) -> m.ExactSessionReport | None:
        """The current or latest exact accounting report (its `max_tasks` busiest tasks);
        None if none ever ran."""
        return (await self.request(m.ExactReportRequest(max_tasks=max_tasks),
                                   m.ExactReport)).report

    async def profile(self, duration: float = 3.0, top: int = 15) -> m.ProfileReply:
        """A py-spy profile taken by the agent of its own process (control role), on a
        connection of its own so the other requests are not held up meanwhile."""
        client = self._client()
        client.timeout = duration + 15.0
        await client.connect()
        try:
            return await client.request(m.ProfileRequest(duration=duration, rate=100, top=top),
                                        m.ProfileReply)
        finally:
            await client.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._drop_requests()
