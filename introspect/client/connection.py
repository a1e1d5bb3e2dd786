"""`Client`: a blocking connection to an agent (the CLI's). The handshake, the requests and
the errors live in `handshake`, `requests` and `errors`, shared with `AsyncClient`; this
module only moves bytes over a socket."""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec

from introspect.client import errors
from introspect.client.aio import AsyncClient
from introspect.client.errors import AgentError, tls_failure
from introspect.client.handshake import (
    DEFAULT_TIMEOUT,
    Handshake,
    client_ssl_context,
    client_token,
)
from introspect.client.requests import Call, SyncRequests
from introspect.client.target import Target, resolve_target
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.peercheck import verify_unix_peer

R = TypeVar("R")
T = TypeVar("T")

# `_raise_for` is what the console client checks its replies with.
_raise_for = errors.raise_for

__all__ = ["DEFAULT_TIMEOUT", "AgentError", "AsyncClient", "Client", "client_ssl_context",
           "client_token", "tls_failure"]


class Client(SyncRequests):
    """A blocking connection. Use as a context manager, or `connect()` / `close()`."""

    def __init__(self, target: Target | str, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, name: str = "introspect-cli") -> None:
        self.target = resolve_target(target) if isinstance(target, str) else target
        self.token = client_token(token)
        self.timeout = timeout
        self.name = name
        self.sock: socket.socket | None = None
        self.role: str | None = None
        self.agent_pid: int | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def connect(self) -> Client:
        t = self.target
        try:
            if t.kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(t.address)
                verify_unix_peer(sock, t)
            else:
                sock = socket.create_connection((t.address, t.port), timeout=self.timeout)
                if t.tls:
                    sock = client_ssl_context().wrap_socket(sock, server_hostname=t.address)
        except OSError as exc:
            raise errors.connect_failure(t, exc, self.timeout) from None
        self.sock = sock
        try:
            self.role, self.agent_pid = Handshake(t, self.token, self.name).run_blocking(
                self._exchange)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # --- framing -----------------------------------------------------------------------------
    def _send(self, message: m.Message) -> None:
        assert self.sock is not None
        try:
            self.sock.sendall(framing.pack(m.encode(message)))
        except OSError as exc:
            raise errors.send_failure(self.target, exc) from None

    def _recv(self, timeout: float | None = None) -> m.Message:
        assert self.sock is not None
        wait = self.timeout if timeout is None else timeout
        self.sock.settimeout(wait)
        try:
            data = framing.recv_frame_blocking(self.sock, framing.MAX_FRAME_TO_CLIENT)
        except (EOFError, framing.FrameError, OSError) as exc:
            raise errors.receive_failure(self.target, exc, wait) from None
        try:
            return m.decode_agent_message(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.unreadable(self.target, exc) from None

    def _exchange(self, message: m.Message) -> m.Message:
        self._send(message)
        return self._recv()

    # --- requests ----------------------------------------------------------------------------
    def request(self, req: m.Request, expect: type[R], timeout: float | None = None) -> R:
        req.id = next(self._ids)
        self._send(req)
        while True:
            reply = self._recv(timeout)
            if getattr(reply, "id", req.id) in (req.id, 0) and not isinstance(reply, m.Update):
                return errors.expect(reply, expect, self.target)

    def call(self, call: Call[Any, T]) -> T:
        return call.result(self.request(call.request, call.expect, call.timeout))

    def subscribe(self, interval: float = 1.0, top_tasks: int = 20) -> Iterator[m.Update]:
        """Yield updates forever (full first, then changed-only)."""
        self._send(m.Subscribe(id=next(self._ids), interval=interval, top_tasks=top_tasks))
        wait = max(self.timeout, interval * 3 + 2)
        while True:
            reply = self._recv(timeout=wait)
            errors.raise_for(reply, self.target)
            if isinstance(reply, m.Update):
                yield reply

