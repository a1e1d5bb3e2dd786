"""A live agent as the TUI's data source, on the client stack: the stream is the client's
`watch()` (reconnect with backoff, full snapshots from its `SnapshotAssembler`), turned into
the header's states; a second connection answers requests (task pages, detail, stacks,
cancel), so a slow request never stalls the stream. The requests have the client's names
(`AsyncRequests`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from introspect.client.aio import AsyncClient
from introspect.client.requests import AsyncRequests, Call
from introspect.client.stream import Backoff, Connected, Disconnected, TargetGone, Tick, watch
from introspect.client.target import Target
from introspect.errors import ConnectError, UserError
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot
from introspect.tui.state import connection as states
from introspect.tui.state.connection import ConnectionState, tui_backoff

T = TypeVar("T")
CLIENT_NAME = "introspect-top"
CANCEL_MESSAGE = "cancelled from introspect top"


class LiveSession(AsyncRequests):
    live = True

    def __init__(self, target: Target, label: str, *, token: str | None = None,
                 interval: float = 1.0, top_tasks: int = 20,
                 on_snapshot: Callable[[Snapshot, m.Update], None],
                 on_state: Callable[[ConnectionState], None],
                 backoff: Backoff | None = None,
                 on_history: Callable[[list[m.HistorySample]], None] | None = None) -> None:
        self.target = target
        self.label = label
        self.token = token
        self.interval = interval
        self.top_tasks = top_tasks
        self.on_snapshot = on_snapshot
        self.on_state = on_state
        self.on_history = on_history
        self._seeding: set[asyncio.Task[None]] = set()  # one per (re)connection
        self.backoff = backoff or tui_backoff()
        self.role: str | None = None
        self._requests: AsyncClient | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> AsyncClient:
        return AsyncClient(self.target, token=self.token, name=CLIENT_NAME)

    async def run(self) -> None:
        """Stream until cancelled, the target exits, or a refusal retrying can't fix."""
        self.on_state(states.Connecting(self.label))
        connected = False
        try:
            async for event in watch(self.target, token=self.token, interval=self.interval,
                                     top_tasks=self.top_tasks, backoff=self.backoff,
                                     name=CLIENT_NAME, retry_first=False):
                if isinstance(event, Tick):
                    self.on_snapshot(event.snapshot, event.update)
                elif isinstance(event, Connected):
                    connected = True
                    self.role = event.role
                    self.on_state(states.Connected(self.label, event.role or "read"))
                    if self.on_history is not None:
                        seeding = asyncio.create_task(self._seed_history())
                        self._seeding.add(seeding)
                        seeding.add_done_callback(self._seeding.discard)
                elif isinstance(event, Disconnected):
                    await self._drop_requests()
                    self.on_state(states.Disconnected(self.label, event.reason, event.attempt,
                                                      event.backoff))
                elif isinstance(event, TargetGone):
                    self._stop_seeding()
                    self.on_state(states.TargetExited(self.label, event.pid))
                    return
        except UserError as exc:
            self._stop_seeding()
            self.on_state(states.Refused(self.label, str(exc), not connected, exc.exit_code))
        finally:
            self._stop_seeding()
            await self._drop_requests()

    def _stop_seeding(self) -> None:
        """History that lands after the session ended would draw on a screen whose recording
        is closed (or on the next target's): it is dropped, not drawn."""
        for seeding in list(self._seeding):
            seeding.cancel()

    async def _seed_history(self) -> None:
        """The agent's recent past, drawn as soon as we connect. An agent from before the
        history request answers an error: then the charts start empty, as they used to."""
        try:
            samples = await self.history()
        except (UserError, ConnectError):
            return
        if self.on_history is not None:
            self.on_history(samples)

    async def _drop_requests(self) -> None:
        client, self._requests = self._requests, None
        if client is not None:
            await client.close()

    async def call(self, call: Call[Any, T]) -> T:
        """One request on the request connection; reconnects it once if it went stale."""
        async with self._lock:
            for attempt in (1, 2):
                if self._requests is None:
                    self._requests = await self._client().connect()
                try:
                    return await self._requests.call(call)
                except ConnectError:
                    await self._drop_requests()
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    async def cancel(self, task_id: int, message: str | None = CANCEL_MESSAGE) -> str:
        return await super().cancel(task_id, message)

    async def profile(self, duration: float = 3.0, rate: int = 100,
                      top: int = 15) -> m.ProfileReply:
        """A py-spy profile taken by the agent of its own process (control role), on a
        connection of its own so the other requests are not held up meanwhile."""
        async with self._client() as client:
            return await client.profile(duration, rate, top)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._drop_requests()
