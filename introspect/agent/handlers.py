"""Requests after the handshake: decode strictly, check the role, validate, answer one reply
each; a subscription hands the connection to the update stream (agent/server/stream.py)."""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import time
from typing import TYPE_CHECKING

import msgspec

from introspect.agent import queries
from introspect.agent.server.handshake import Session
from introspect.agent.server.stream import stream_updates
from introspect.agent.server.wire import send
from introspect.protocol import framing
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.core import Agent
    from introspect.agent.server import AgentServer

MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0
MAX_FILTER_CHARS = 1024  # a substring filter longer than this is a mistake or an attack
MAX_CANCEL_MESSAGE = 1000
MAX_PROFILE_SECONDS = 300.0


def tag_of(message: msgspec.Struct) -> str:
    return str(type(message).__struct_config__.tag)


async def serve_requests(server: AgentServer, session: Session, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
    while True:
        data = await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT)
        request = await _decode_request(data, writer)
        if request is None:
            continue
        if isinstance(request, m.Subscribe):
            problem = _interval_problem(request.interval)
            if problem:
                await send(writer, m.ErrorReply(id=request.id, code="bad_request",
                                                message=problem))
                continue
            await stream_updates(server, session, request, reader, writer, functools.partial(
                _answer_while_streaming, server, session, writer))
            return
        if isinstance(request, m.ConsoleOpen):
            if await open_console(server, session, request, reader, writer):
                return
            continue
        reply = await handle(server, session, request)
        reply.id = request.id
        await send(writer, reply)


async def _decode_request(data: bytes, writer: asyncio.StreamWriter) -> m.Request | None:
    """The request, or None after answering `bad_request` (the connection stays usable)."""
    try:
        request = m.decode_client_message(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        await send(writer, m.ErrorReply(code="bad_request", message=str(exc)[:300]))
        return None
    if not isinstance(request, m.Request):
        await send(writer, m.ErrorReply(code="bad_request",
                                        message=f"unexpected {tag_of(request)} message"))
        return None
    return request


async def handle(server: AgentServer, session: Session, request: m.Request) -> m.Reply:
    agent = server.agent
    if isinstance(request, m.CONTROL_REQUESTS) and session.role != "control":
        server.audit.record(tag_of(request), "forbidden", session.peer, session.role,
                            client=session.client, request=msgspec.to_builtins(request))
        return m.ErrorReply(code="forbidden",
                            message=f"{tag_of(request)} needs the control role; this "
                                    "connection is read-only")
    problem = _validate(request)
    if problem:
        return m.ErrorReply(code="bad_request", message=problem)
    try:
        return await _answer(server, session, agent, request)
    except Exception as exc:
        agent.collector_errors.record("server", exc)
        return m.ErrorReply(code="unavailable", message=f"{type(exc).__name__}: {exc}"[:300])


def _validate(request: m.Request) -> str | None:
    """Strict types come from msgspec; here: the values a type can't rule out."""
    if isinstance(request, m.TaskListRequest):
        if request.limit < 0 or request.offset < 0:
            return "offset and limit must be >= 0"
        for name in ("kind", "name", "state", "location", "text"):
            value = getattr(request, name)
            if value is not None and len(value) > MAX_FILTER_CHARS:
                return f"filter {name} is longer than {MAX_FILTER_CHARS} characters"
        if request.min_age is not None and not math.isfinite(request.min_age):
            return "min_age must be a finite number of seconds"
    if isinstance(request, m.SetInterval):
        return _interval_problem(request.interval)
    if isinstance(request, m.ProfileRequest):
        if not (math.isfinite(request.duration) and 0 < request.duration
                <= MAX_PROFILE_SECONDS):
            return f"profile duration must be within 0-{MAX_PROFILE_SECONDS:g} s"
        if not (1 <= request.rate <= 1000 and 1 <= request.top <= 1000):
            return "profile rate must be 1-1000 Hz and top 1-1000"
    return None


def _interval_problem(interval: float) -> str | None:
    if math.isfinite(interval) and MIN_INTERVAL <= interval <= MAX_INTERVAL:
        return None
    return f"interval must be within {MIN_INTERVAL}-{MAX_INTERVAL:g} s"


async def _answer(server: AgentServer, session: Session, agent: Agent,
                  request: m.Request) -> m.Reply:
    if isinstance(request, m.Ping):
        return m.Ack(detail="pong")
    if isinstance(request, m.SnapshotRequest):
        top = _clamp(request.top_tasks, 0, 1000)
        return m.SnapshotReply(snapshot=agent.snapshot(top_tasks=top))
    if isinstance(request, m.TaskListRequest):
        return queries.task_page(agent, request)
    if isinstance(request, m.TaskDetailRequest):
        detail = queries.task_detail(agent, request.task_id)
        if detail is None:
            return m.ErrorReply(code="not_found", message=f"no live task with id "
                                f"{request.task_id}")
        return detail
    if isinstance(request, m.ThreadStacksRequest):
        return m.ThreadStacks(threads=queries.thread_stacks(agent))
    if isinstance(request, m.QueueListRequest):
        from introspect.agent import snapshot_builder

        return m.QueueList(queues=snapshot_builder.queues(agent))
    if isinstance(request, m.DumpRequest):
        return queries.dump(agent, _clamp(request.max_tasks, 0, 100_000))
    if isinstance(request, m.SetInterval):
        session.interval = request.interval
        return m.Ack(detail=f"interval {request.interval:g}s")
    if isinstance(request, m.CancelTask):
        message = None if request.message is None else request.message[:MAX_CANCEL_MESSAGE]
        ok, detail = queries.cancel_task(agent, request.task_id, message)
        server.audit.record("cancel_task", "ok" if ok else "failed", session.peer,
                            session.role, client=session.client, task_id=request.task_id,
                            detail=detail)
        if not ok:
            return m.ErrorReply(code="not_found", message=detail)
        return m.Ack(detail=detail)
    if isinstance(request, m.ProfileRequest):
        from introspect.agent.self_profile import profile_self

        server.audit.record("profile", "ok", session.peer, session.role, client=session.client,
                            duration=request.duration)
        return await profile_self(server.agent, request)
    if isinstance(request, m.GcCollect):
        generation = _clamp(request.generation, 0, 2)
        started = time.perf_counter()
        collected = gc.collect(generation)
        took = time.perf_counter() - started
        server.audit.record("gc_collect", "ok", session.peer, session.role,
                            client=session.client, generation=generation, collected=collected)
        return m.Ack(detail=f"collected {collected} objects in {took * 1000:.1f} ms")
    if isinstance(request, (m.ExactAccounting, m.ExactReportRequest, m.StuckRequest)):
        return _detectors(server, session, agent, request)
    return m.ErrorReply(code="bad_request", message=f"unsupported request {tag_of(request)}")


def _detectors(server: AgentServer, session: Session, agent: Agent,
               request: m.Request) -> m.Reply:
    """Exact accounting and the "all waiting on the same thing" report (issue 6)."""
    sampler = agent.extensions.get("sampling")
    if isinstance(request, m.StuckRequest):
        from introspect.agent import stuck

        groups = stuck.report(agent, min_tasks=_clamp(request.min_tasks, 1, 100_000),
                              limit=_clamp(request.limit, 1, 1000))
        return m.StuckReport(groups=[msgspec.convert(
            {k: g[k] for k in m.StuckGroup.__struct_fields__}, m.StuckGroup) for g in groups])
    if sampler is None:
        return m.ErrorReply(code="unavailable", message="busy-time accounting is not running "
                            "in this agent")
    if isinstance(request, m.ExactAccounting):
        if not (math.isfinite(request.seconds) and 0 < request.seconds <= 600):
            return m.ErrorReply(code="bad_request", message="seconds must be within 0-600")
        try:
            sampler.exact(request.seconds)
        except RuntimeError as exc:
            return m.ErrorReply(code="unavailable", message=str(exc))
        server.audit.record("exact_accounting", "ok", session.peer, session.role,
                            client=session.client, seconds=request.seconds)
        return m.Ack(detail=f"exact accounting on for {request.seconds:g}s")
    assert isinstance(request, m.ExactReportRequest)
    report = sampler.exact_report()
    return m.ExactReport(report=msgspec.to_builtins(report) if report is not None else None)


async def open_console(server: AgentServer, session: Session, request: m.ConsoleOpen,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Hand the connection to the console extension; False (and an error sent) if refused."""
    console = server.agent.extensions.get("console")
    if session.role != "control":
        server.audit.record("console_open", "forbidden", session.peer, session.role,
                            client=session.client)
        reply: m.Reply = m.ErrorReply(code="forbidden", message="the console needs the control "
                                      "role; this connection is read-only")
    elif console is None or not server.agent.config.console:
        reply = m.ErrorReply(code="unavailable", message="the console is disabled: start the "
                             "agent with --console (INTROSPECT_CONSOLE=1)")
    else:
        server.audit.record("console_open", "ok", session.peer, session.role,
                            client=session.client)
        await console.serve(server, session, request, reader, writer)
        return True
    reply.id = request.id
    await send(writer, reply)
    return False


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


async def _answer_while_streaming(server: AgentServer, session: Session,
                                 writer: asyncio.StreamWriter, data: bytes) -> None:
    """A request received on a streaming connection: one reply, no second stream or console."""
    request = await _decode_request(data, writer)
    if request is None:
        return
    if isinstance(request, m.Subscribe | m.ConsoleOpen):
        reply: m.Reply = m.ErrorReply(code="bad_request",
                                      message=f"{tag_of(request)} while streaming")
    else:
        reply = await handle(server, session, request)
    reply.id = request.id
    await send(writer, reply)
