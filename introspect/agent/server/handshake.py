"""The login: TLS (when the listener has it), hello and version, challenge, proof, role. And
who the peer is: SO_PEERCRED on the Unix socket, the address on TCP."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any

from introspect.agent.audit import Audit
from introspect.agent.server.listeners import Listener
from introspect.agent.server.wire import read_handshake_message, send, send_quietly
from introspect.protocol import auth
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS


@dataclass
class Session:
    """One logged-in connection."""

    peer: str
    role: str
    client: str
    version: int
    interval: float = 1.0


class Handshake:
    def __init__(self, config: Any, audit: Audit) -> None:
        self.config = config
        self.audit = audit

    async def login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    listener: Listener, peer: str) -> Session | None:
        """The session, or None after answering why not (the caller closes)."""
        if listener.ssl_context is not None:
            try:
                await writer.start_tls(listener.ssl_context)
            except (ssl.SSLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or type(exc).__name__
                self.audit.record("tls", "denied", peer, reason=str(reason))
                return None
        return await self._handshake(reader, writer, listener, peer)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         listener: Listener, peer: str) -> Session | None:
        hello = await read_handshake_message(reader)
        if not isinstance(hello, m.Hello):
            self.audit.record("handshake", "invalid", peer)
            await send_quietly(writer, m.ErrorReply(code="bad_request",
                                                    message="expected a hello message"))
            return None
        shared = sorted(set(hello.versions) & set(SUPPORTED_VERSIONS))
        client_name = hello.client[:100]
        if not shared:
            self.audit.record("handshake", "incompatible", peer, client=client_name,
                              offered=hello.versions[:8])
            await send_quietly(writer, m.ErrorReply(
                code="incompatible",
                message=f"agent speaks protocol {list(SUPPORTED_VERSIONS)}, client offered "
                        f"{hello.versions[:8]}: upgrade the older side"))
            return None
        version = shared[-1]
        trusted_local = listener.kind == "unix" and _same_user(writer)
        tokens_configured = bool(self.config.token or self.config.read_token)
        needs_token = not trusted_local and tokens_configured
        agent_nonce = auth.new_nonce()
        await send(writer, m.Challenge(version=version, agent_nonce=agent_nonce,
                                       auth="token" if needs_token else "none",
                                       agent_pid=os.getpid()))
        reply = await read_handshake_message(reader)
        if not isinstance(reply, m.Authenticate):
            self.audit.record("handshake", "invalid", peer, client=client_name)
            await send_quietly(writer, m.ErrorReply(code="bad_request",
                                                    message="expected authenticate"))
            return None
        # Without a token: the same user on the local socket, or TCP on loopback by the
        # explicit --insecure-no-auth (the listener refused to start otherwise).
        role: str | None = "control"
        if needs_token:
            role = self._role_for(reply.proof or b"", agent_nonce, hello.client_nonce)
        if role is None:
            outcome = "missing_token" if not reply.proof else "denied"
            self.audit.record("authenticate", outcome, peer, client=client_name)
            await send_quietly(writer, m.ErrorReply(
                code="auth_failed", message="authentication failed: "
                + ("no token presented" if not reply.proof else "wrong token")))
            return None
        await send(writer, m.Welcome(role=role, pid=os.getpid(), version=version))
        return Session(peer=peer, role=role, client=client_name, version=version)

    def _role_for(self, proof: bytes, agent_nonce: bytes, client_nonce: bytes) -> str | None:
        if len(client_nonce) < 16 or len(client_nonce) > 64:
            return None  # a short client nonce would let a replayed proof through
        # Both tokens are always checked so the timing does not tell which one matched.
        control = bool(self.config.token) and auth.verify(self.config.token or "", agent_nonce,
                                                          client_nonce, proof)
        read = bool(self.config.read_token) and auth.verify(self.config.read_token or "",
                                                            agent_nonce, client_nonce, proof)
        return "control" if control else ("read" if read else None)


def peer_name(writer: asyncio.StreamWriter, listener: Listener) -> str:
    if listener.kind == "unix":
        creds = _peer_creds(writer)
        return f"unix pid={creds[0]} uid={creds[1]}" if creds else "unix"
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


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


def _same_user(writer: asyncio.StreamWriter) -> bool:
    creds = _peer_creds(writer)
    if creds is None:
        return True  # no SO_PEERCRED: the 0600 socket file is the check
    return creds[1] in (os.getuid(), 0)
