"""`AsyncClient`: the same connection over asyncio streams (the TUI's and the recorder's
stream, benchmarks). Same handshake, requests and error wording as `Client`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec

from introspect.client import errors
from introspect.client.handshake import (
    DEFAULT_TIMEOUT,
    Handshake,
    client_ssl_context,
    client_token,
)
from introspect.client.requests import AsyncRequests, Call
from introspect.client.target import Target, resolve_target
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.peercheck import verify_unix_peer

R = TypeVar("R")
T = TypeVar("T")


class AsyncClient(AsyncRequests):
    """Use as `async with AsyncClient(target) as client:` or `await connect()` / `close()`."""

    def __init__(self, target: Target | str, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, name: str = "introspect-tui") -> None:
        self.target = resolve_target(target) if isinstance(target, str) else target
        self.token = client_token(token)
        self.timeout = timeout
        self.name = name
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.role: str | None = None
        self.agent_pid: int | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> AsyncClient:
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> AsyncClient:
        t = self.target
        try:
            if t.kind == "unix":
                coro = asyncio.open_unix_connection(t.address)
            else:
                coro = asyncio.open_connection(t.address, t.port,
                                               ssl=client_ssl_context() if t.tls else None)
            self.reader, self.writer = await asyncio.wait_for(coro, self.timeout)
        except OSError as exc:  # TimeoutError and ssl.SSLError are OSErrors too
            raise errors.connect_failure(t, exc, self.timeout) from None
        if t.kind == "unix":
            try:  # no proof is ever given to a listener of another user
                verify_unix_peer(self.writer.get_extra_info("socket"), t)
            except BaseException:
                await self.close()
                raise
        try:
            self.role, self.agent_pid = await Handshake(t, self.token, self.name).run(
                self._exchange)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- framing -----------------------------------------------------------------------------
    async def _send(self, message: m.Message) -> None:
        assert self.writer is not None
        try:
            self.writer.write(framing.pack(m.encode(message)))
            await self.writer.drain()
        except OSError as exc:
            raise errors.send_failure(self.target, exc) from None

    async def _recv(self, timeout: float | None = None) -> m.Message:
        assert self.reader is not None
        wait = self.timeout if timeout is None else timeout
        try:
            data = await asyncio.wait_for(
                framing.read_frame(self.reader, framing.MAX_FRAME_TO_CLIENT), wait)
        except (EOFError, framing.FrameError, OSError, asyncio.IncompleteReadError) as exc:
            raise errors.receive_failure(self.target, exc, wait) from None
        try:
            return m.decode_agent_message(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.unreadable(self.target, exc) from None

    async def _exchange(self, message: m.Message) -> m.Message:
        await self._send(message)
        return await self._recv()

    # --- requests ----------------------------------------------------------------------------
    async def _send_request(self, req: m.Request) -> int:
        req.id = next(self._ids)
        await self._send(req)
        return req.id

    async def request(self, req: m.Request, expect: type[R],
                      timeout: float | None = None) -> R:
        rid = await self._send_request(req)
        while True:
            reply = await self._recv(timeout)
            if getattr(reply, "id", rid) in (rid, 0) and not isinstance(reply, m.Update):
                return errors.expect(reply, expect, self.target)

    async def call(self, call: Call[Any, T]) -> T:
        return call.result(await self.request(call.request, call.expect, call.timeout))

    async def subscribe(self, interval: float = 1.0,
                        top_tasks: int = 20) -> AsyncIterator[m.Update]:
        """Yield updates until the connection ends (full first, then changed-only). Other
        replies on this connection are skipped: use a second client for requests.
        `introspect.client.stream` turns them into full Snapshots."""
        await self._send_request(m.Subscribe(interval=interval, top_tasks=top_tasks))
        wait = max(self.timeout, interval * 3 + 2)
        while True:
            reply = await self._recv(timeout=wait)
            errors.raise_for(reply, self.target)
            if isinstance(reply, m.Update):
                yield reply
