"""The login: TLS (when the listener has it), hello and version, challenge, proof, role, all
under the handshake deadline. Who the peer is: SO_PEERCRED on the Unix socket (the same user,
root, or an allow-listed uid is trusted; any other uid is refused), the address on TCP. A peer
that keeps failing waits longer for each answer (its own connection waits, nobody else's)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from introspect.agent.audit import Audit
from introspect.agent.server.listeners import Listener
from introspect.agent.server.refusals import RefusalLog
from introspect.agent.server.wire import read_handshake_message, send, send_quietly
from introspect.protocol import auth
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS

# A failed login is answered after BASE * 2**(failures-1) seconds, at most MAX, counting the
# peer's failures of the last FORGET seconds: with the per-peer cap on logins in progress, a
# peer gets a few guesses a second at most.
FAILURE_DELAY_BASE = 0.25
FAILURE_DELAY_MAX = 8.0
FAILURE_FORGET_SECONDS = 300.0
MAX_TRACKED_PEERS = 4096


@dataclass
class Session:
    """One logged-in connection."""

    peer: str
    role: str
    client: str
    version: int
    interval: float = 1.0
    streaming: bool = False  # a stream is never idle


@dataclass(frozen=True)
class Peer:
    name: str  # for audit lines: "unix pid=P uid=U" or "HOST:PORT"
    key: str  # what per-peer limits count by: "uid U" on the Unix socket, the host on TCP
    trusted: bool  # logs in as control without a token
    refused: bool  # a Unix-socket peer of a uid that is not allowed


def identify(writer: asyncio.StreamWriter, listener: Listener, allow_uids: list[int]) -> Peer:
    if listener.kind == "unix":
        creds = _peer_creds(writer)
        if creds is None:  # no SO_PEERCRED: the 0600 socket file is the check
            return Peer("unix", "unix", trusted=True, refused=False)
        pid, uid, _gid = creds
        # root can ptrace this process anyway: trusting it gives it nothing new
        allowed = uid in (os.getuid(), 0) or uid in allow_uids
        return Peer(f"unix pid={pid} uid={uid}", f"uid {uid}", trusted=allowed,
                    refused=not allowed)
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple):
        return Peer(f"{address[0]}:{address[1]}", str(address[0]), trusted=False, refused=False)
    return Peer(str(address), str(address), trusted=False, refused=False)


class LoginFailures:
    """Recent failed logins per peer key, bounded."""

    def __init__(self) -> None:
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def delay(self, key: str) -> float:
        recent = self._recent(key)
        if not recent:
            return 0.0
        return min(FAILURE_DELAY_MAX, FAILURE_DELAY_BASE * 2 ** (len(recent) - 1))

    def failed(self, key: str) -> None:
        recent = self._recent(key)
        recent.append(time.monotonic())
        del recent[:-64]
        self._failures[key] = recent
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_TRACKED_PEERS:
            self._failures.popitem(last=False)

    def _recent(self, key: str) -> list[float]:
        horizon = time.monotonic() - FAILURE_FORGET_SECONDS
        return [t for t in self._failures.get(key, ()) if t > horizon]


class Refused(Exception):
    """The login failed; `reply` is sent after the peer's delay."""

    def __init__(self, reply: m.ErrorReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


class Handshake:
    def __init__(self, config: Any, audit: Audit, refusals: RefusalLog,
                 admit: Callable[[str], str | None]) -> None:
        self.config = config
        self.audit = audit
        self.refusals = refusals
        self.admit = admit  # role → None, or why the agent is too busy for it
        self.failures = LoginFailures()

    async def login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    listener: Listener, peer: Peer) -> Session | None:
        """The session, or None after answering why not (the caller closes)."""
        timeout = self.config.handshake_timeout
        try:
            return await asyncio.wait_for(self._exchange(reader, writer, listener, peer),
                                          timeout)
        except TimeoutError:
            self.refusals.record("handshake", "expired", peer.key, peer.name)
            await send_quietly(writer, m.ErrorReply(
                code="auth_failed", message=f"handshake not completed within {timeout:g}s"))
        except Refused as refused:
            self.failures.failed(peer.key)
            # Waited here, outside the deadline: the peer's own attempt is slowed, and it
            # keeps holding one of its few login slots meanwhile.
            await asyncio.sleep(self.failures.delay(peer.key))
            await send_quietly(writer, refused.reply)
        return None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        listener: Listener, peer: Peer) -> Session | None:
        if listener.ssl_context is not None:
            try:
                await writer.start_tls(listener.ssl_context)
            except (ssl.SSLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or type(exc).__name__
                self.refusals.record("tls", "denied", peer.key, peer.name, reason=str(reason))
                return None
        hello = await read_handshake_message(reader)
        if not isinstance(hello, m.Hello):
            self.refusals.record("handshake", "invalid", peer.key, peer.name)
            await send_quietly(writer, m.ErrorReply(code="bad_request",
                                                    message="expected a hello message"))
            return None
        shared = sorted(set(hello.versions) & set(SUPPORTED_VERSIONS))
        client_name = hello.client[:100]
        if not shared:
            self.refusals.record("handshake", "incompatible", peer.key, peer.name,
                                 client=client_name, offered=hello.versions[:8])
            await send_quietly(writer, m.ErrorReply(
                code="incompatible",
                message=f"agent speaks protocol {list(SUPPORTED_VERSIONS)}, client offered "
                        f"{hello.versions[:8]}: upgrade the older side"))
            return None
        version = shared[-1]
        tokens_configured = bool(self.config.token or self.config.read_token)
        needs_token = not peer.trusted and tokens_configured
        agent_nonce = auth.new_nonce()
        await send(writer, m.Challenge(version=version, agent_nonce=agent_nonce,
                                       auth="token" if needs_token else "none",
                                       agent_pid=os.getpid()))
        reply = await read_handshake_message(reader)
        if not isinstance(reply, m.Authenticate):
            self.refusals.record("handshake", "invalid", peer.key, peer.name,
                                 client=client_name)
            await send_quietly(writer, m.ErrorReply(code="bad_request",
                                                    message="expected authenticate"))
            return None
        # Without a token: a trusted local peer, or TCP on loopback by the explicit
        # --insecure-no-auth (the listener refused to start otherwise).
        role: str | None = "control"
        if needs_token:
            role = self._role_for(reply.proof or b"", agent_nonce, hello.client_nonce)
        if role is None:
            outcome = "missing_token" if not reply.proof else "denied"
            self.refusals.record("authenticate", outcome, peer.key, peer.name,
                                 client=client_name)
            raise Refused(m.ErrorReply(
                code="auth_failed", message="authentication failed: "
                + ("no token presented" if not reply.proof else "wrong token")))
        busy = self.admit(role)
        if busy is not None:
            self.refusals.record("connect", "busy", peer.key, peer.name, role=role)
            await send_quietly(writer, m.ErrorReply(code="busy", message=busy))
            return None
        self.audit.record("login", "ok", peer.name, role, client=client_name,
                          auth="token" if needs_token else "peer")
        await send(writer, m.Welcome(role=role, pid=os.getpid(), version=version))
        return Session(peer=peer.name, role=role, client=client_name, version=version)

    def _role_for(self, proof: bytes, agent_nonce: bytes, client_nonce: bytes) -> str | None:
        if len(client_nonce) < 16 or len(client_nonce) > 64:
            return None  # a short client nonce would let a replayed proof through
        # Both tokens are always checked so the timing does not tell which one matched.
        control = bool(self.config.token) and auth.verify(self.config.token or "", agent_nonce,
                                                          client_nonce, proof)
        read = bool(self.config.read_token) and auth.verify(self.config.read_token or "",
                                                            agent_nonce, client_nonce, proof)
        return "control" if control else ("read" if read else None)


def _peer_creds(writer: asyncio.StreamWriter) -> tuple[int, int, int] | None:
    sock = writer.get_extra_info("socket")
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if sock is None or so_peercred is None:
        return None
    try:
        data = sock.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", data)
