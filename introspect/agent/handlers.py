"""The update stream: one shared snapshot per tick for every subscriber, changed-only
updates, and a slow client that gets fewer updates instead of a growing buffer. Requests are
answered in `requests` (its dispatch table); `serve_requests` binds the two."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from introspect.agent import requests
from introspect.agent.requests import MAX_TOP_TASKS, Session, clamp, handle, send, tag_of
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot

if TYPE_CHECKING:
    from introspect.agent.core import Agent
    from introspect.agent.server import AgentServer

__all__ = ["STALL_TIMEOUT", "WRITE_BUFFER_LIMIT", "Session", "SnapshotTicker", "Tick",
           "serve_requests", "stream_updates", "update_frame"]

# A subscriber whose unsent bytes exceed this gets no new update (it is counted in `dropped`);
# one that has not drained for STALL_TIMEOUT is disconnected.
WRITE_BUFFER_LIMIT = 256 * 1024
STALL_TIMEOUT = 60.0


async def serve_requests(server: AgentServer, session: Session, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
    await requests.serve(server, session, reader, writer, stream=stream_updates)


# --- the update stream --------------------------------------------------------------------
@dataclass
class Tick:
    """One snapshot, encoded section by section once, shared by every subscriber."""

    generation: int
    built_at: float  # monotonic
    snapshot: Snapshot
    sections: dict[str, bytes]
    frames: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def full_bytes(self) -> bytes:
        return msgspec.msgpack.encode(self.snapshot)


class SnapshotTicker:
    """N subscribers cost one snapshot per tick, not N: a snapshot younger than `max_age`
    is reused, and subscribers' ticks are aligned to the same instants."""

    MAX_VARIANTS = 8  # distinct `top_tasks` values kept at once

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.generation = 0
        self.builds = 0
        self._latest: dict[int, Tick] = {}

    def latest(self, top_tasks: int, max_age: float) -> Tick:
        tick = self._latest.get(top_tasks)
        now = time.monotonic()
        if tick is not None and now - tick.built_at <= max_age:
            return tick
        snap = self.agent.snapshot(top_tasks=top_tasks)
        self.generation += 1
        self.builds += 1
        sections = {name: msgspec.msgpack.encode(getattr(snap, name))
                    for name in snap.__struct_fields__}
        tick = Tick(self.generation, time.monotonic(), snap, sections)
        self._latest.pop(top_tasks, None)
        if len(self._latest) >= self.MAX_VARIANTS:
            self._latest.pop(next(iter(self._latest)))
        self._latest[top_tasks] = tick
        return tick


def update_frame(tick: Tick, previous: Tick | None, dropped: int) -> bytes:
    """The framed Update taking a client from `previous` (None: nothing yet) to `tick`.
    Clients in step share the same bytes; sections travel pre-encoded (msgspec.Raw)."""
    key = (previous.generation if previous is not None else 0, dropped)
    frame = tick.frames.get(key)
    if frame is not None:
        return frame
    if previous is None:
        update = m.Update(seq=tick.generation, time=tick.snapshot.time, full=True,
                          dropped=dropped, snapshot=msgspec.Raw(tick.full_bytes()))
    else:
        changed = {name: msgspec.Raw(blob) for name, blob in tick.sections.items()
                   if name == "time" or previous.sections.get(name) != blob}
        update = m.Update(seq=tick.generation, time=tick.snapshot.time, full=False,
                          dropped=dropped, changed=changed)
    frame = framing.pack(m.encode(update))
    if len(tick.frames) < 16:
        tick.frames[key] = frame
    return frame


async def stream_updates(server: AgentServer, session: Session, request: m.Subscribe,
                         reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A full snapshot, then changed-only updates every interval. A client that can't keep up
    gets fewer updates (counted in `dropped`), never an unbounded buffer."""
    session.interval = request.interval
    top = clamp(request.top_tasks, 0, MAX_TOP_TASKS)
    transport = writer.transport
    sent: Tick | None = None
    dropped = 0
    stalled_since: float | None = None
    control = asyncio.ensure_future(_read_control(server, session, reader, writer))
    try:
        while not control.done() and not transport.is_closing():
            now = time.monotonic()
            if sent is not None and transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                dropped += 1
                stalled_since = stalled_since or now
                if now - stalled_since > STALL_TIMEOUT:
                    return  # not read for a minute: free the connection
            else:
                stalled_since = None
                tick = server.ticker.latest(top, max_age=session.interval / 2)
                if tick is not sent:
                    writer.write(update_frame(tick, sent, dropped))
                    sent = tick
            # Wake on the interval's grid, so every subscriber of an interval shares a tick.
            interval = session.interval
            delay = interval - (time.monotonic() % interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(control), delay)
    finally:
        control.cancel()
        with contextlib.suppress(BaseException):
            await control  # retrieve its end (EOF, cancellation) so nothing is logged


async def _read_control(server: AgentServer, session: Session, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    """While streaming, the client may still send requests (set interval, cancel...)."""
    while True:
        data = await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT)
        request = await requests.decode_request(data, writer)
        if request is None:
            continue
        if isinstance(request, m.Subscribe | m.ConsoleOpen):
            reply: m.Reply = m.ErrorReply(code="bad_request",
                                          message=f"{tag_of(request)} while streaming")
        else:
            reply = await handle(server, session, request)
        reply.id = request.id
        await send(writer, reply)
