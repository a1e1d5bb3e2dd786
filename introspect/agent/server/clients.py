"""One client connection, from accept to close: the uid check, the connection caps, the login
and the requests. Imported by the server thread at the first connection, not at start: this
module and what it imports (the protocol messages, msgspec, the handshake, the request
handlers, the snapshot builders) are ~4,000 GC-tracked objects that every full collection of
the host would walk in a service nobody attaches to (issue 17)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from introspect.agent.server import requests
from introspect.agent.server.connections import ActivityReader, Connection, ConnectionTable
from introspect.agent.server.handshake import Handshake, identify
from introspect.agent.server.heavy import HeavyReplies
from introspect.agent.server.stream import WRITE_BUFFER_LIMIT, SnapshotTicker
from introspect.agent.server.wire import QUIET_SEND_TIMEOUT, read_handshake_message, send_quietly
from introspect.protocol import framing
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.server.lifecycle import AgentServer
    from introspect.agent.server.listeners import Listener


def _ensure_parts(server: AgentServer) -> None:
    """The parts every connection shares, made once (on the server's thread)."""
    if server.handshake is None:
        server.table = ConnectionTable()
        server.sweeper = asyncio.ensure_future(server.sweep_connections())  # stalled and idle ones
        server.ticker = SnapshotTicker(server.agent)  # shared by every subscriber
        server.heavy = HeavyReplies()  # dumps and large pages: one at a time, shared
        server.handshake = Handshake(server.config, server.audit, server.refusals,
                                     server.table.admit)


async def serve(server: AgentServer, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter, listener: Listener) -> None:
    """Serve one client until it leaves; never raises (errors are counted)."""
    _ensure_parts(server)
    assert server.table is not None and server.handshake is not None
    peer = identify(writer, listener, server.config.allow_uids)
    assert isinstance(reader, ActivityReader)
    conn = Connection(peer, reader, writer)
    server.table.open.add(conn)
    writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_LIMIT)
    try:
        if peer.refused:
            server.refusals.record("connect", "denied_uid", peer.key, peer.name)
            # its hello is read first, so the reason reaches it instead of a broken pipe
            with contextlib.suppress(Exception):
                await asyncio.wait_for(read_handshake_message(reader), QUIET_SEND_TIMEOUT)
            await send_quietly(writer, m.ErrorReply(
                code="auth_failed", message=f"this agent does not accept {peer.key} on its "
                "socket (only its own user; see INTROSPECT_ALLOW_UIDS)"))
            return
        busy = server.table.refuse_at_connect(peer)
        if busy is not None:
            server.refusals.record("connect", "busy", peer.key, peer.name)
            await send_quietly(writer, m.ErrorReply(code="busy", message=busy))
            return
        conn.logging_in = True
        session = await server.handshake.login(reader, writer, listener, peer)
        conn.logging_in = False
        if session is not None:
            conn.session = session
            conn.logged_in_at = time.monotonic()
            await requests.serve(server, session, reader, writer)
    except (EOFError, ConnectionError, framing.FrameError, asyncio.IncompleteReadError):
        pass
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        server.agent.collector_errors.record("server", exc)
    finally:
        await _close(writer)
        server.table.open.discard(conn)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close, letting a last reply go out for a moment; then abort, so a peer that does not
    read can't keep the socket (and its buffers) open for good."""
    with contextlib.suppress(Exception):
        writer.close()
        if writer.transport.get_write_buffer_size():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), QUIET_SEND_TIMEOUT)
        writer.transport.abort()
