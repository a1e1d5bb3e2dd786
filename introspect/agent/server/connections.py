"""Every open connection, and the limits on them: logins in progress (in all, and per peer that
must present a token), logged-in sessions with slots kept for the control role, the idle
timeout after login and the stall timeout on unsent bytes."""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # handshake.py is imported at the first connection (clients.py)
    from introspect.agent.server.handshake import Peer, Session

MAX_SESSIONS = 128  # logged-in connections
RESERVED_FOR_CONTROL = 4  # of MAX_SESSIONS: read clients filling the rest can't lock out control
MAX_LOGINS_IN_PROGRESS = 64  # connections that have not logged in yet (trusted peers aside)
MAX_LOGINS_PER_PEER = 8  # of those, from one remote host
STREAM_READ_LIMIT = 64 * 1024  # asyncio's default: bytes read ahead of the request loop


class ActivityReader(asyncio.StreamReader):
    """A StreamReader that remembers when the peer last sent anything (for the idle timeout)."""

    def __init__(self, limit: int = STREAM_READ_LIMIT) -> None:
        super().__init__(limit=limit)
        self.last_received = time.monotonic()

    def feed_data(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        super().feed_data(data)


@dataclass(eq=False)
class Connection:
    peer: Peer
    reader: ActivityReader
    writer: asyncio.StreamWriter
    logging_in: bool = False  # admitted to the login, not finished with it
    session: Session | None = None
    logged_in_at: float = 0.0
    buffered: int = 0  # bytes the peer has not read, ours and the kernel's, at the last sweep
    progress_at: float = field(default_factory=time.monotonic)  # last time they went down


class ConnectionTable:
    def __init__(self) -> None:
        self.open: set[Connection] = set()
        self.stalled_aborted = 0  # connections aborted for leaving our bytes unread
        self.idle_closed = 0

    def __len__(self) -> int:
        return len(self.open)

    def refuse_at_connect(self, peer: Peer) -> str | None:
        """Why a new connection cannot start a login now, or None. Trusted local peers (the
        owner's uid) are not held back by strangers' half-open logins."""
        if peer.trusted:
            return None
        logging_in = [c for c in self.open if c.logging_in and not c.peer.trusted]
        if len(logging_in) >= MAX_LOGINS_IN_PROGRESS:
            return f"the agent already has {MAX_LOGINS_IN_PROGRESS} logins in progress"
        if sum(c.peer.key == peer.key for c in logging_in) >= MAX_LOGINS_PER_PEER:
            return f"{MAX_LOGINS_PER_PEER} logins from {peer.key} are already in progress"
        return None

    def admit(self, role: str) -> str | None:
        """Why a logged-in `role` session cannot be served now, or None."""
        sessions = sum(c.session is not None for c in self.open)
        limit = MAX_SESSIONS if role == "control" else MAX_SESSIONS - RESERVED_FOR_CONTROL
        if sessions >= limit:
            return f"the agent already serves {sessions} connections"
        return None

    def sweep(self, idle_timeout: float, stall_timeout: float) -> list[tuple[Connection, str]]:
        """Abort connections whose unsent bytes have not gone down for `stall_timeout` (a
        close() would wait for them forever); close logged-in, non-streaming ones silent for
        `idle_timeout` (0: never). Returns what was ended and why ("stalled", "idle")."""
        ended: list[tuple[Connection, str]] = []
        now = time.monotonic()
        for conn in list(self.open):
            transport = conn.writer.transport
            if transport.is_closing():
                continue
            buffered = transport.get_write_buffer_size() + _kernel_send_queue(transport)
            if buffered == 0 or buffered < conn.buffered:
                conn.progress_at = now
            conn.buffered = buffered
            if buffered and now - conn.progress_at > stall_timeout:
                self.stalled_aborted += 1
                transport.abort()  # frees our buffer and the kernel's send queue now
                ended.append((conn, "stalled"))
                continue
            session = conn.session
            if (idle_timeout and session is not None and not session.streaming
                    and buffered == 0
                    and now - max(conn.reader.last_received, conn.logged_in_at) > idle_timeout):
                self.idle_closed += 1
                transport.close()
                ended.append((conn, "idle"))
        return ended


def _kernel_send_queue(transport: asyncio.BaseTransport) -> int:
    """Bytes written to the socket that the peer has not taken yet (Linux SIOCOUTQ): a
    stopped reader can leave megabytes there while our own buffer looks empty."""
    sock = transport.get_extra_info("socket")
    outq = getattr(termios, "TIOCOUTQ", None)  # == SIOCOUTQ
    if sock is None or outq is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), outq, b"\0\0\0\0"))[0]
    except (OSError, ValueError):
        return 0
