"""Requests after the handshake: decode strictly, check the role, validate, answer one reply
each. One table, `ROUTES` {request type -> Route}, says for every request what checks its
values and what answers it; the role comes from `messages.CONTROL_REQUESTS`. Two requests take
the connection over instead of answering once (`TAKEOVERS`): `Subscribe` (the update stream,
`server/stream.py`) and `ConsoleOpen` (the console extension)."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from introspect.agent import queries, snapshot_builder, stuck
from introspect.agent.exact import MAX_SECONDS as MAX_EXACT_SECONDS
from introspect.agent.self_profile import MAX_DURATION as MAX_PROFILE_SECONDS
from introspect.agent.self_profile import MAX_RATE as MAX_PROFILE_RATE
from introspect.agent.self_profile import MAX_TOP as MAX_PROFILE_TOP
from introspect.agent.server.handshake import Session
from introspect.agent.server.heavy import is_heavy
from introspect.agent.server.stream import MAX_TOP_TASKS, stream_updates
from introspect.agent.server.wire import send
from introspect.protocol import framing
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.server import AgentServer

MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0
MAX_FILTER_CHARS = 1024  # a substring filter longer than this is a mistake or an attack
MAX_CANCEL_MESSAGE = 1000
MAX_DUMP_TASKS = 100_000
MAX_EXACT_TASKS = 10_000  # per-task rows in an exact report
MAX_STUCK_MIN_TASKS = 100_000
MAX_STUCK_GROUPS = 1000



def tag_of(message: msgspec.Struct) -> str:
    return str(type(message).__struct_config__.tag)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))



async def decode_request(data: bytes, writer: asyncio.StreamWriter) -> m.Request | None:
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


@dataclass(frozen=True)
class Call:
    """One request being answered: who asked, on which server."""

    server: AgentServer
    session: Session

    def audit(self, action: str, outcome: str = "ok", **details: Any) -> None:
        session = self.session
        self.server.audit.record(action, outcome, session.peer, session.role,
                                 client=session.client, **details)


Answer = Callable[[Call, Any], Awaitable[m.Reply]]
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Route:
    answer: Answer
    check: Check | None = None  # the values a type can't rule out; a sentence when wrong


# --- checks --------------------------------------------------------------------------------
def interval_problem(interval: float) -> str | None:
    if math.isfinite(interval) and MIN_INTERVAL <= interval <= MAX_INTERVAL:
        return None
    return f"interval must be within {MIN_INTERVAL}-{MAX_INTERVAL:g} s"


def _check_task_list(request: m.TaskListRequest) -> str | None:
    if request.limit < 0 or request.offset < 0:
        return "offset and limit must be >= 0"
    for name in ("kind", "name", "state", "location", "text"):
        value = getattr(request, name)
        if value is not None and len(value) > MAX_FILTER_CHARS:
            return f"filter {name} is longer than {MAX_FILTER_CHARS} characters"
    if request.min_age is not None and not math.isfinite(request.min_age):
        return "min_age must be a finite number of seconds"
    return None


def _check_profile(request: m.ProfileRequest) -> str | None:
    if not (math.isfinite(request.duration) and 0 < request.duration <= MAX_PROFILE_SECONDS):
        return f"profile duration must be within 0-{MAX_PROFILE_SECONDS:g} s"
    if not (1 <= request.rate <= MAX_PROFILE_RATE and 1 <= request.top <= MAX_PROFILE_TOP):
        return f"profile rate must be 1-{MAX_PROFILE_RATE} Hz and top 1-{MAX_PROFILE_TOP}"
    return None


def _check_exact(request: m.ExactAccounting) -> str | None:
    if math.isfinite(request.seconds) and 0 < request.seconds <= MAX_EXACT_SECONDS:
        return None
    return f"seconds must be within 0-{MAX_EXACT_SECONDS:g}"


# --- answers -------------------------------------------------------------------------------
async def _ping(call: Call, request: m.Ping) -> m.Reply:
    return m.Ack(detail="pong")


async def _snapshot(call: Call, request: m.SnapshotRequest) -> m.Reply:
    top = clamp(request.top_tasks, 0, MAX_TOP_TASKS)
    return m.SnapshotReply(snapshot=call.server.agent.snapshot(top_tasks=top))


async def _task_list(call: Call, request: m.TaskListRequest) -> m.Reply:
    return queries.task_page(call.server.agent, request)


async def _task_detail(call: Call, request: m.TaskDetailRequest) -> m.Reply:
    detail = queries.task_detail(call.server.agent, request.task_id)
    if detail is None:
        return m.ErrorReply(code="not_found", message=f"no live task with id {request.task_id}")
    return detail


async def _thread_stacks(call: Call, request: m.ThreadStacksRequest) -> m.Reply:
    return m.ThreadStacks(threads=queries.thread_stacks(call.server.agent))


async def _queue_list(call: Call, request: m.QueueListRequest) -> m.Reply:
    return m.QueueList(queues=snapshot_builder.queues(call.server.agent, names=True))


async def _dump(call: Call, request: m.DumpRequest) -> m.Reply:
    return queries.dump(call.server.agent, clamp(request.max_tasks, 0, MAX_DUMP_TASKS))


async def _set_interval(call: Call, request: m.SetInterval) -> m.Reply:
    call.session.interval = request.interval
    return m.Ack(detail=f"interval {request.interval:g}s")


async def _cancel_task(call: Call, request: m.CancelTask) -> m.Reply:
    message = None if request.message is None else request.message[:MAX_CANCEL_MESSAGE]
    ok, detail = queries.cancel_task(call.server.agent, request.task_id, message)
    call.audit("cancel_task", "ok" if ok else "failed", task_id=request.task_id, detail=detail)
    return m.Ack(detail=detail) if ok else m.ErrorReply(code="not_found", message=detail)


async def _profile(call: Call, request: m.ProfileRequest) -> m.Reply:
    from introspect.agent.self_profile import profile_self

    call.audit("profile", duration=request.duration)
    return await profile_self(call.server.agent, request)


async def _gc_collect(call: Call, request: m.GcCollect) -> m.Reply:
    generation = clamp(request.generation, 0, 2)
    started = time.perf_counter()
    collected = gc.collect(generation)
    took = time.perf_counter() - started
    call.audit("gc_collect", generation=generation, collected=collected)
    return m.Ack(detail=f"collected {collected} objects in {took * 1000:.1f} ms")


async def _exact_start(call: Call, request: m.ExactAccounting) -> m.Reply:
    try:
        call.server.agent.exact.start(request.seconds)
    except RuntimeError as exc:
        return m.ErrorReply(code="unavailable", message=str(exc))
    call.audit("exact_accounting", seconds=request.seconds)
    return m.Ack(detail=f"exact accounting on for {request.seconds:g}s")


async def _exact_report(call: Call, request: m.ExactReportRequest) -> m.Reply:
    max_tasks = clamp(request.max_tasks, 0, MAX_EXACT_TASKS)
    return m.ExactReport(report=call.server.agent.exact.report(max_tasks))


async def _stuck(call: Call, request: m.StuckRequest) -> m.Reply:
    """Groups of tasks all waiting on the same thing."""
    groups = stuck.report(call.server.agent,
                          min_tasks=clamp(request.min_tasks, 1, MAX_STUCK_MIN_TASKS),
                          limit=clamp(request.limit, 1, MAX_STUCK_GROUPS))
    return m.StuckReport(groups=groups)


async def _history(call: Call, request: m.HistoryRequest) -> m.Reply:
    """The recent past, for a client that just attached."""
    from introspect.agent.history import MAX_SAMPLES, PERIOD

    blocking = call.server.agent.blocking
    limit = clamp(request.max_samples, 0, MAX_SAMPLES)
    samples = blocking.history.samples(limit) if blocking is not None else []
    return m.HistoryReply(period=PERIOD, samples=samples)


ROUTES: dict[type[m.Request], Route] = {
    m.Ping: Route(_ping),
    m.SnapshotRequest: Route(_snapshot),
    m.TaskListRequest: Route(_task_list, _check_task_list),
    m.TaskDetailRequest: Route(_task_detail),
    m.ThreadStacksRequest: Route(_thread_stacks),
    m.QueueListRequest: Route(_queue_list),
    m.DumpRequest: Route(_dump),
    m.SetInterval: Route(_set_interval, lambda r: interval_problem(r.interval)),
    m.CancelTask: Route(_cancel_task),
    m.ProfileRequest: Route(_profile, _check_profile),
    m.GcCollect: Route(_gc_collect),
    m.ExactAccounting: Route(_exact_start, _check_exact),
    m.ExactReportRequest: Route(_exact_report),
    m.StuckRequest: Route(_stuck),
    m.HistoryRequest: Route(_history),
}


def _refusal(call: Call, request: m.Request) -> m.ErrorReply | None:
    """`forbidden` (audited) for a control request on a read-only connection."""
    if not isinstance(request, m.CONTROL_REQUESTS) or call.session.role == "control":
        return None
    call.audit(tag_of(request), "forbidden", request=msgspec.to_builtins(request))
    return m.ErrorReply(code="forbidden", message=f"{tag_of(request)} needs the control role; "
                        "this connection is read-only")


async def handle(server: AgentServer, session: Session, request: m.Request) -> m.Reply:
    """The one reply to `request` (its `id` echoed); never raises for the request's sake."""
    call = Call(server, session)
    reply = _refusal(call, request)
    route = ROUTES.get(type(request))
    if reply is None and route is None:
        reply = m.ErrorReply(code="bad_request",
                             message=f"unsupported request {tag_of(request)}")
    if reply is None and route is not None:
        problem = route.check(request) if route.check is not None else None
        if problem:
            reply = m.ErrorReply(code="bad_request", message=problem)
        else:
            try:
                reply = await route.answer(call, request)
            except Exception as exc:
                server.agent.collector_errors.record("server", exc)
                reply = m.ErrorReply(code="unavailable",
                                     message=f"{type(exc).__name__}: {exc}"[:300])
    assert reply is not None
    reply.id = request.id
    return reply


async def respond(server: AgentServer, session: Session, request: m.Request,
                  reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send the reply to `request`; heavy ones go through the server's `HeavyReplies`
    (one build at a time, shared for a second, sent in slices). Either way the next request
    is read only once this reply is in the transport's hands below its high-water mark."""
    if is_heavy(request):
        def gone() -> bool:  # the client left while its request waited for its turn
            return writer.transport.is_closing() or reader.at_eof()

        await server.heavy.answer(request, lambda: handle(server, session, request), writer,
                                  gone)
    else:
        await send(writer, await handle(server, session, request))


# --- requests that take the connection over ------------------------------------------------
@dataclass(frozen=True)
class Connection:
    call: Call
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


async def _subscribe(conn: Connection, request: m.Subscribe) -> m.Reply | None:
    problem = interval_problem(request.interval)
    if problem:
        return m.ErrorReply(code="bad_request", message=problem)
    server, session, writer = conn.call.server, conn.call.session, conn.writer

    async def answer(data: bytes) -> None:
        """A request received on the streaming connection: one reply, no second takeover."""
        request = await decode_request(data, writer)
        if request is None:
            return
        if type(request) in TAKEOVERS:
            await send(writer, m.ErrorReply(id=request.id, code="bad_request",
                                            message=f"{tag_of(request)} while streaming"))
            return
        await respond(server, session, request, conn.reader, writer)

    await stream_updates(server, session, request, conn.reader, writer, answer)
    return None


async def _open_console(conn: Connection, request: m.ConsoleOpen) -> m.Reply | None:
    """Hand the connection to the console extension (the role was checked before)."""
    agent = conn.call.server.agent
    console = agent.extensions.get("console")
    if console is None or not agent.config.console:
        return m.ErrorReply(code="unavailable", message="the console is disabled: start the "
                            "agent with --console (INTROSPECT_CONSOLE=1)")
    conn.call.audit("console_open")
    await console.serve(conn.call.server, conn.call.session, request, conn.reader, conn.writer)
    return None


# A takeover returns None once it has had the connection (it is then closed), or a reply
# when it refused (the connection stays usable for requests).
TAKEOVERS: dict[type[m.Request], Callable[[Connection, Any], Awaitable[m.Reply | None]]] = {
    m.Subscribe: _subscribe,
    m.ConsoleOpen: _open_console,
}


async def serve(server: AgentServer, session: Session, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Answer requests until the client leaves or a takeover ends the connection."""
    conn = Connection(Call(server, session), reader, writer)
    while True:
        data = await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT)
        request = await decode_request(data, writer)
        if request is None:
            continue
        takeover = TAKEOVERS.get(type(request))
        if takeover is None:
            await respond(server, session, request, reader, writer)
            continue
        reply = _refusal(conn.call, request) or await takeover(conn, request)
        if reply is None:
            return
        reply.id = request.id
        await send(writer, reply)
