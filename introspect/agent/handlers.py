"""Requests after the handshake: decode strictly, check the role, answer one reply each."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from introspect.agent import queries
from introspect.protocol import framing
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.server import AgentServer

MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0


@dataclass
class Session:
    peer: str
    role: str
    client: str
    version: int
    interval: float = 1.0


async def serve_requests(server: AgentServer, session: Session, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
    while True:
        data = await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT)
        try:
            request = m.decode_client_message(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await send(writer, m.ErrorReply(code="bad_request", message=str(exc)[:300]))
            continue
        if not isinstance(request, m.Request):
            await send(writer, m.ErrorReply(code="bad_request", message="unexpected message"))
            continue
        if isinstance(request, m.Subscribe):
            await stream_updates(server, session, request, reader, writer)
            return
        if isinstance(request, m.ConsoleOpen):
            if await open_console(server, session, request, reader, writer):
                return
            continue
        reply = await handle(server, session, request)
        reply.id = request.id
        await send(writer, reply)


async def send(writer: asyncio.StreamWriter, message: m.Message) -> None:
    writer.write(framing.pack(m.encode(message)))
    await writer.drain()


async def handle(server: AgentServer, session: Session, request: m.Request) -> m.Reply:
    agent = server.agent
    if isinstance(request, m.CONTROL_REQUESTS) and session.role != "control":
        server.audit.record(type(request).__name__, "forbidden", session.peer, session.role,
                            request=msgspec.to_builtins(request))
        return m.ErrorReply(code="forbidden",
                            message=f"{type(request).__name__} needs the control role; this "
                                    "connection is read-only")
    try:
        if isinstance(request, m.Ping):
            return m.Ack(detail="pong")
        if isinstance(request, m.SnapshotRequest):
            top = _clamp(request.top_tasks, 0, 1000)
            return m.SnapshotReply(snapshot=agent.snapshot(top_tasks=top))
        if isinstance(request, m.TaskListRequest):
            if request.limit < 0 or request.offset < 0:
                return m.ErrorReply(code="bad_request", message="offset and limit must be >= 0")
            return queries.task_page(agent, request)
        if isinstance(request, m.TaskDetailRequest):
            detail = queries.task_detail(agent, request.task_id)
            if detail is None:
                return m.ErrorReply(code="not_found",
                                    message=f"no live task with id {request.task_id}")
            return detail
        if isinstance(request, m.ThreadStacksRequest):
            return m.ThreadStacks(threads=queries.thread_stacks(agent))
        if isinstance(request, m.QueueListRequest):
            from introspect.agent import snapshot_builder

            return m.QueueList(queues=snapshot_builder.queues(agent))
        if isinstance(request, m.DumpRequest):
            return queries.dump(agent, _clamp(request.max_tasks, 0, 100_000))
        if isinstance(request, m.SetInterval):
            if not MIN_INTERVAL <= request.interval <= MAX_INTERVAL:
                return m.ErrorReply(code="bad_request",
                                    message=f"interval must be within {MIN_INTERVAL}-"
                                            f"{MAX_INTERVAL:g} s")
            session.interval = request.interval
            return m.Ack(detail=f"interval {request.interval:g}s")
        if isinstance(request, m.CancelTask):
            ok, detail = queries.cancel_task(agent, request.task_id, request.message)
            server.audit.record("cancel_task", "ok" if ok else "failed", session.peer,
                                session.role, task_id=request.task_id, detail=detail)
            if not ok:
                return m.ErrorReply(code="not_found", message=detail)
            return m.Ack(detail=detail)
        if isinstance(request, m.ProfileRequest):
            from introspect.profiling.self_profile import profile_self

            server.audit.record("profile", "ok", session.peer, session.role,
                                duration=request.duration)
            return await profile_self(server.agent, request)
        if isinstance(request, m.GcCollect):
            generation = _clamp(request.generation, 0, 2)
            started = time.perf_counter()
            collected = gc.collect(generation)
            took = time.perf_counter() - started
            server.audit.record("gc_collect", "ok", session.peer, session.role,
                                generation=generation, collected=collected)
            return m.Ack(detail=f"collected {collected} objects in {took * 1000:.1f} ms")
    except Exception as exc:
        agent.collector_errors.record("server", exc)
        return m.ErrorReply(code="unavailable", message=f"{type(exc).__name__}: {exc}"[:300])
    return m.ErrorReply(code="bad_request", message=f"unsupported request {type(request).__name__}")


async def open_console(server: AgentServer, session: Session, request: m.ConsoleOpen,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Hand the connection to the console extension; False (and an error sent) if refused."""
    console = server.agent.extensions.get("console")
    if session.role != "control":
        server.audit.record("console_open", "forbidden", session.peer, session.role)
        reply: m.Reply = m.ErrorReply(code="forbidden", message="the console needs the control "
                                      "role; this connection is read-only")
    elif console is None or not server.agent.config.console:
        reply = m.ErrorReply(code="unavailable", message="the console is disabled: start the "
                             "agent with --console (INTROSPECT_CONSOLE=1)")
    else:
        server.audit.record("console_open", "ok", session.peer, session.role)
        await console.serve(server, session, request, reader, writer)
        return True
    reply.id = request.id
    await send(writer, reply)
    return False


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


async def stream_updates(server: AgentServer, session: Session, request: m.Subscribe,
                         reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A full snapshot, then changed-only updates every interval. A client that can't keep up
    gets fewer updates (counted in `dropped`), never an unbounded buffer."""
    session.interval = min(max(request.interval, MIN_INTERVAL), MAX_INTERVAL)
    top = _clamp(request.top_tasks, 0, 1000)
    previous: dict[str, bytes] = {}
    seq = 0
    dropped = 0
    control = asyncio.ensure_future(_read_control(server, session, reader, writer))
    try:
        next_at = time.monotonic()
        while not control.done():
            snap = server.agent.snapshot(top_tasks=top)
            sections = {name: msgspec.msgpack.encode(getattr(snap, name))
                        for name in snap.__struct_fields__}
            if seq == 0:
                update = m.Update(seq=seq, time=snap.time, full=True, dropped=dropped,
                                  snapshot=snap)
            else:
                changed = {name: msgspec.to_builtins(getattr(snap, name))
                           for name, blob in sections.items()
                           if previous.get(name) != blob or name == "time"}
                update = m.Update(seq=seq, time=snap.time, full=False, dropped=dropped,
                                  changed=changed)
            previous = sections
            started = time.monotonic()
            await send(writer, update)
            seq += 1
            next_at += session.interval
            now = time.monotonic()
            if now > next_at:  # the client (or we) fell behind: skip, and say so
                missed = int((now - next_at) / session.interval) + 1
                if now - started > session.interval:
                    dropped += missed
                next_at += missed * session.interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(control), max(0.0, next_at - now))
    finally:
        control.cancel()
        with contextlib.suppress(BaseException):
            await control  # retrieve its end (EOF, cancellation) so nothing is logged


async def _read_control(server: AgentServer, session: Session, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    """While streaming, the client may still send requests (set interval, cancel...)."""
    while True:
        data = await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT)
        try:
            request = m.decode_client_message(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if isinstance(request, m.Request) and not isinstance(request, m.Subscribe):
            reply = await handle(server, session, request)
            reply.id = request.id
            await send(writer, reply)


