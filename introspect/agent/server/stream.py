"""The update stream: one shared snapshot per tick for every subscriber, changed-only updates,
and a slow client that gets fewer updates instead of a growing buffer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot

if TYPE_CHECKING:
    from introspect.agent.core import Agent
    from introspect.agent.server.handshake import Session
    from introspect.agent.server.lifecycle import AgentServer

# A subscriber whose unsent bytes exceed this gets no new update (it is counted in `dropped`);
# one that reads nothing for INTROSPECT_STALL_TIMEOUT is aborted (connections.py). Requests
# wait for the bytes to go below it too (drain) before the next one is read.
WRITE_BUFFER_LIMIT = 256 * 1024
MAX_TOP_TASKS = 1000

# Answers one request frame received while streaming (set interval, cancel...), reply sent.
AnswerFrame = Callable[[bytes], Awaitable[None]]


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
                         reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         answer: AnswerFrame) -> None:
    """A full snapshot, then changed-only updates every interval. A client that can't keep up
    gets fewer updates (counted in `dropped`), never an unbounded buffer. Requests sent while
    streaming go to `answer`."""
    session.interval = request.interval
    session.streaming = True
    top = max(0, min(MAX_TOP_TASKS, request.top_tasks))
    transport = writer.transport
    sent: Tick | None = None
    dropped = 0
    control = asyncio.ensure_future(_read_control(reader, answer))
    try:
        while not control.done() and not transport.is_closing():
            if sent is not None and transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                dropped += 1
            else:
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


async def _read_control(reader: asyncio.StreamReader, answer: AnswerFrame) -> None:
    """While streaming, the client may still send requests (set interval, cancel...)."""
    while True:
        await answer(await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT))
