"""Heavy replies (dumps, large task pages, thread stacks, stuck reports): built one at a time,
the next build waiting twice as long as the last one took (at most a third of the GIL's time
goes to them, whatever the clients send; the reply itself is not delayed), kept encoded for a
second so identical requests from many clients share one build and one buffer, and sent in
slices so a client that does not read pins at most a slice of our memory besides the shared
body; when the client leaves, nothing keeps the body (no reference cycle waiting for the
collector)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

import msgspec

from introspect.protocol import framing
from introspect.protocol import messages as m

CACHE_SECONDS = 1.0  # an identical request within this gets the same encoded reply
PAUSE_FACTOR = 2.0  # after a build, the next one waits twice as long as it took
MAX_PAUSE = 2.0  # seconds, at most
LARGE_PAGE_ROWS = 200  # a task page asking for more rows than this is heavy
SLICE = 64 * 1024  # bytes handed to the transport before waiting for it to drain
MAX_PINNED_BYTES = 64 * 1024 * 1024  # distinct reply bodies being sent, all connections
_ID_TAIL = b"\xa2id\x00"  # how a reply ends once encoded with id=0: `id` is its last field


def is_heavy(request: m.Request) -> bool:
    if isinstance(request, m.TaskListRequest):
        return request.limit > LARGE_PAGE_ROWS
    return isinstance(request, (m.DumpRequest, m.ThreadStacksRequest, m.StuckRequest))


class HeavyReplies:
    """Lives on the agent's private loop; one per server."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._cache: dict[bytes, tuple[float, bytes]] = {}
        self._pinned: dict[int, list[int]] = {}  # id(body) -> [size, senders]
        self.builds = 0
        self.shared = 0  # answers served from the cache
        self.refused = 0

    @property
    def pinned_bytes(self) -> int:
        return sum(size for size, _ in self._pinned.values())

    async def answer(self, request: m.Request, build: Callable[[], Awaitable[m.Reply]],
                     writer: asyncio.StreamWriter, gone: Callable[[], bool]) -> None:
        """Send the reply to `request`; `build` makes it (its id is set here). Nothing is
        built for a client that is `gone` by its turn."""
        key = m.encode(msgspec.structs.replace(request, id=0))
        body = self._cached(key)
        if body is None:
            await self._lock.acquire()
            pause = 0.0
            try:
                if gone():
                    raise ConnectionResetError("the client left before its reply was built")
                body = self._cached(key)  # built while we waited for our turn
                if body is None:
                    body, pause = await self._build(key, build)
            finally:
                # the next build waits out the pause; this reply does not
                asyncio.get_running_loop().call_later(pause, self._lock.release)
        else:
            self.shared += 1
        await self._send(writer, body, request.id)

    def _cached(self, key: bytes) -> bytes | None:
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        return None

    async def _build(self, key: bytes,
                     build: Callable[[], Awaitable[m.Reply]]) -> tuple[bytes, float]:
        """The encoded reply, and how long the next build must wait."""
        if self.pinned_bytes > MAX_PINNED_BYTES:
            self.refused += 1  # not cached: the next try may find the others gone
            return _encode(m.ErrorReply(code="busy", message=(
                f"{self.pinned_bytes >> 20} MB of large replies are still being sent to "
                "other clients; try again shortly"))), 0.0
        started = time.monotonic()
        # The 100,000s of objects a dump makes would trigger full collections of the app's
        # whole heap (0.1 s each, with the GIL held); they die by refcount right after
        # encoding, so the collector is paused for the build (and left as the app had it).
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            reply = await build()
            reply.id = 0
            body = _encode(reply)
            del reply  # the objects behind it go now; only the encoded body is kept
        finally:
            if paused:
                gc.enable()
        self.builds += 1
        took = time.monotonic() - started
        self._cache = {k: v for k, v in self._cache.items()
                       if started - v[0] < CACHE_SECONDS}
        self._cache[key] = (time.monotonic(), body)
        asyncio.get_running_loop().call_later(CACHE_SECONDS, self._expire)
        return body, min(took * PAUSE_FACTOR, MAX_PAUSE)

    def _expire(self) -> None:
        now = time.monotonic()
        self._cache = {k: v for k, v in self._cache.items() if now - v[0] < CACHE_SECONDS}

    async def _send(self, writer: asyncio.StreamWriter, body: bytes, request_id: int) -> None:
        """The frame: `body` without its id, then the request's id; in slices, so unsent
        bytes of this connection stay about the transport's high-water mark."""
        if not body.endswith(_ID_TAIL):  # pragma: no cover - a reply with a later field
            writer.write(framing.pack(body))
            await writer.drain()
            return
        tail = msgspec.msgpack.encode(request_id)
        view = memoryview(body)[:-1]
        entry = self._pinned.setdefault(id(body), [len(body), 0])
        entry[1] += 1
        try:
            writer.write(framing.HEADER.pack(len(view) + len(tail)))
            for start in range(0, len(view), SLICE):
                writer.write(view[start:start + SLICE])
                await writer.drain()
            writer.write(tail)
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            # asyncio keeps that error in a cycle with the drain waiter, and its traceback
            # holds this frame, so `body` would live until the collector ran (measured:
            # 66 MB after 40 clients left); a fresh error without it ends the connection.
            exc.__traceback__ = None
            raise ConnectionResetError(f"sending a large reply: {exc}") from None
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._pinned[id(body)]


def _encode(reply: m.Reply) -> bytes:
    return m.encode(reply)
