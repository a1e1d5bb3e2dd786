"""Connections to an agent: `Client` (blocking, for the CLI) and `AsyncClient` (for the TUI).

Both do the same handshake: offer our protocol versions, answer the agent's challenge with an
HMAC proof of the token (never the token), and map every failure to a one-line error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import msgspec

from introspect.client.target import Target, resolve_target
from introspect.errors import AuthError, ConnectError, UserError
from introspect.protocol import auth, framing
from introspect.protocol import messages as m
from introspect.protocol.peercheck import verify_unix_peer
from introspect.protocol.snapshot import Snapshot
from introspect.protocol.version import SUPPORTED_VERSIONS

R = TypeVar("R")
DEFAULT_TIMEOUT = 5.0


class AgentError(UserError):
    """The agent answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, exit_code=4 if code in ("forbidden", "auth_failed") else 1)
        self.code = code


def client_token(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("INTROSPECT_TOKEN"):
        return os.environ["INTROSPECT_TOKEN"]
    path = os.environ.get("INTROSPECT_TOKEN_FILE")
    if path:
        from introspect.config import read_token_file

        return read_token_file(path, "INTROSPECT_TOKEN_FILE")
    return None


def client_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=os.environ.get("INTROSPECT_TLS_CA") or None)
    cert = os.environ.get("INTROSPECT_TLS_CLIENT_CERT")
    if cert:
        context.load_cert_chain(cert, os.environ.get("INTROSPECT_TLS_CLIENT_KEY") or None)
    return context


def tls_failure(target: Target, exc: ssl.SSLError) -> ConnectError:
    """One line that says what went wrong with TLS and what to set."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "certificate verify failed"
        return ConnectError(f"TLS handshake with {target} failed: the agent's certificate was "
                            f"not accepted ({why}); set INTROSPECT_TLS_CA to the CA that "
                            "signed it")
    reason = exc.reason or str(exc)
    hint = ""
    if "CERTIFICATE" in str(reason).upper() or "ALERT" in str(reason).upper():
        hint = " (the agent probably requires a client certificate: set " \
            "INTROSPECT_TLS_CLIENT_CERT)"
    return ConnectError(f"TLS handshake with {target} failed: {reason}{hint}")


def _closed_in_handshake(target: Target, exc: ConnectError) -> ConnectError:
    """A TLS agent that wants a client certificate just closes the connection (TLS 1.3 lets
    the client finish its side first): say the likely cause."""
    if target.tls and not os.environ.get("INTROSPECT_TLS_CLIENT_CERT") \
            and "TLS" not in str(exc):
        return ConnectError(f"{exc}: the agent probably requires a client certificate (set "
                            "INTROSPECT_TLS_CLIENT_CERT and INTROSPECT_TLS_CLIENT_KEY)")
    return exc


def _check_version(challenge: m.Challenge, target: Target) -> None:
    if challenge.version not in SUPPORTED_VERSIONS:
        raise UserError(f"{target}: incompatible agent: it chose protocol {challenge.version}, "
                        f"this client speaks {list(SUPPORTED_VERSIONS)}")


def _raise_for(reply: m.Message, target: Target) -> None:
    if isinstance(reply, m.ErrorReply):
        if reply.code == "auth_failed":
            raise AuthError(f"{target}: {reply.message} (set INTROSPECT_TOKEN or "
                            "INTROSPECT_TOKEN_FILE)")
        if reply.code == "incompatible":
            raise UserError(f"{target}: incompatible agent: {reply.message}")
        raise AgentError(reply.code, f"{target}: {reply.message}")


def _expect(reply: m.Message, cls: type[R], target: Target) -> R:
    _raise_for(reply, target)
    if not isinstance(reply, cls):
        raise ConnectError(f"{target}: unexpected reply {type(reply).__name__}")
    return reply


class Client:
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
        except FileNotFoundError:
            raise ConnectError(f"cannot connect to {t}: no such socket (the agent is gone?)") \
                from None
        except ConnectionRefusedError:
            raise ConnectError(f"cannot connect to {t}: connection refused (is the agent "
                               "still running?)") from None
        except PermissionError:
            raise ConnectError(f"cannot connect to {t}: permission denied (the socket belongs "
                               "to another user)") from None
        except TimeoutError:
            raise ConnectError(f"cannot connect to {t}: timed out after {self.timeout:g}s") \
                from None
        except ssl.SSLError as exc:
            raise tls_failure(t, exc) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {t}: {exc.strerror or exc}") from None
        self.sock = sock
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise
        return self

    def _handshake(self) -> None:
        nonce = auth.new_nonce()
        self._send(m.Hello(versions=list(SUPPORTED_VERSIONS), client=self.name,
                           client_nonce=nonce))
        try:
            challenge = _expect(self._recv(), m.Challenge, self.target)
        except ConnectError as exc:
            raise _closed_in_handshake(self.target, exc) from None
        _check_version(challenge, self.target)
        proof = None
        if challenge.auth == "token":
            if not self.token:
                raise AuthError(f"{self.target} requires a token: set INTROSPECT_TOKEN or "
                                "INTROSPECT_TOKEN_FILE")
            proof = auth.proof(self.token, challenge.agent_nonce, nonce)
        self._send(m.Authenticate(proof=proof))
        welcome = _expect(self._recv(), m.Welcome, self.target)
        self.role = welcome.role
        self.agent_pid = welcome.pid

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
        except TimeoutError:
            raise ConnectError(f"{self.target}: timed out sending") from None
        except OSError as exc:
            raise ConnectError(f"{self.target}: connection lost ({exc.strerror or exc})") \
                from None

    def _recv(self, timeout: float | None = None) -> m.Message:
        assert self.sock is not None
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = framing.recv_frame_blocking(self.sock, framing.MAX_FRAME_TO_CLIENT)
        except TimeoutError:
            raise ConnectError(f"{self.target}: the agent did not answer within "
                               f"{self.timeout if timeout is None else timeout:g}s") from None
        except (EOFError, framing.FrameError):
            raise ConnectError(f"{self.target}: the agent closed the connection") from None
        except ssl.SSLError as exc:  # TLS 1.3: a refused client certificate shows up here
            raise tls_failure(self.target, exc) from None
        except OSError as exc:
            raise ConnectError(f"{self.target}: connection lost ({exc.strerror or exc})") \
                from None
        try:
            return m.decode_agent_message(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConnectError(f"{self.target}: unreadable reply ({exc})") from None

    def request(self, req: m.Request, expect: type[R], timeout: float | None = None) -> R:
        req.id = next(self._ids)
        self._send(req)
        while True:
            reply = self._recv(timeout)
            if getattr(reply, "id", req.id) in (req.id, 0) and not isinstance(reply, m.Update):
                return _expect(reply, expect, self.target)

    # --- typed requests ----------------------------------------------------------------------
    def snapshot(self, top_tasks: int = 20) -> Snapshot:
        return self.request(m.SnapshotRequest(top_tasks=top_tasks), m.SnapshotReply).snapshot

    def tasks(self, **filters: Any) -> m.TaskPage:
        return self.request(m.TaskListRequest(**filters), m.TaskPage)

    def task(self, task_id: int) -> m.TaskDetail:
        return self.request(m.TaskDetailRequest(task_id=task_id), m.TaskDetail)

    def thread_stacks(self) -> list[m.ThreadStack]:
        return self.request(m.ThreadStacksRequest(), m.ThreadStacks).threads

    def queues(self) -> list[Any]:
        return self.request(m.QueueListRequest(), m.QueueList).queues

    def dump(self, max_tasks: int = 10_000, timeout: float | None = None) -> m.DumpReply:
        return self.request(m.DumpRequest(max_tasks=max_tasks), m.DumpReply, timeout)

    def cancel(self, task_id: int, message: str | None = None) -> str:
        return self.request(m.CancelTask(task_id=task_id, message=message), m.Ack).detail

    def gc_collect(self, generation: int = 2) -> str:
        return self.request(m.GcCollect(generation=generation), m.Ack).detail

    def exact_accounting(self, seconds: float) -> str:
        return self.request(m.ExactAccounting(seconds=seconds), m.Ack).detail

    def exact_report(self) -> dict[str, Any] | None:
        return self.request(m.ExactReportRequest(), m.ExactReport).report

    def stuck(self, min_tasks: int = 2, limit: int = 20) -> list[m.StuckGroup]:
        return self.request(m.StuckRequest(min_tasks=min_tasks, limit=limit),
                            m.StuckReport).groups

    def subscribe(self, interval: float = 1.0, top_tasks: int = 20) -> Iterator[m.Update]:
        """Yield updates forever (full first, then changed-only)."""
        self._send(m.Subscribe(id=next(self._ids), interval=interval, top_tasks=top_tasks))
        wait = max(self.timeout, interval * 3 + 2)
        while True:
            reply = self._recv(timeout=wait)
            _raise_for(reply, self.target)
            if isinstance(reply, m.Update):
                yield reply


def connect(target: str | Target, token: str | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> Client:
    return Client(target, token=token, timeout=timeout).connect()


class AsyncClient:
    """The same protocol over asyncio streams (for the TUI and the recorder)."""

    def __init__(self, target: Target | str, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, name: str = "introspect-tui") -> None:
        self.target = resolve_target(target) if isinstance(target, str) else target
        self.token = client_token(token)
        self.timeout = timeout
        self.name = name
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.role: str | None = None
        self.agent_pid: int | None = None
        self._ids = itertools.count(1)

    async def connect(self) -> AsyncClient:
        t = self.target
        try:
            if t.kind == "unix":
                coro = asyncio.open_unix_connection(t.address)
            else:
                coro = asyncio.open_connection(t.address, t.port,
                                               ssl=client_ssl_context() if t.tls else None)
            self.reader, self.writer = await asyncio.wait_for(coro, self.timeout)
            if t.kind == "unix":
                verify_unix_peer(self.writer.get_extra_info("socket"), t)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ConnectError(f"cannot connect to {t}: the agent is not running") from None
        except TimeoutError:
            raise ConnectError(f"cannot connect to {t}: timed out") from None
        except ssl.SSLError as exc:
            raise tls_failure(t, exc) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {t}: {exc.strerror or exc}") from None
        try:
            nonce = auth.new_nonce()
            await self._send(m.Hello(versions=list(SUPPORTED_VERSIONS), client=self.name,
                                     client_nonce=nonce))
            try:
                challenge = _expect(await self.recv(), m.Challenge, t)
            except ConnectError as exc:
                raise _closed_in_handshake(t, exc) from None
            _check_version(challenge, t)
            proof = None
            if challenge.auth == "token":
                if not self.token:
                    raise AuthError(f"{t} requires a token: set INTROSPECT_TOKEN")
                proof = auth.proof(self.token, challenge.agent_nonce, nonce)
            await self._send(m.Authenticate(proof=proof))
            welcome = _expect(await self.recv(), m.Welcome, t)
        except BaseException:
            await self.close()
            raise
        self.role, self.agent_pid = welcome.role, welcome.pid
        return self

    async def _send(self, message: m.Message) -> None:
        assert self.writer is not None
        try:
            self.writer.write(framing.pack(m.encode(message)))
            await self.writer.drain()
        except OSError as exc:
            raise ConnectError(f"{self.target}: connection lost ({exc})") from None

    async def recv(self, timeout: float | None = None) -> m.Message:
        assert self.reader is not None
        try:
            data = await asyncio.wait_for(
                framing.read_frame(self.reader, framing.MAX_FRAME_TO_CLIENT),
                self.timeout if timeout is None else timeout)
        except TimeoutError:
            raise ConnectError(f"{self.target}: the agent did not answer") from None
        except ssl.SSLError as exc:
            raise tls_failure(self.target, exc) from None
        except (EOFError, framing.FrameError, OSError, asyncio.IncompleteReadError):
            raise ConnectError(f"{self.target}: disconnected") from None
        try:
            return m.decode_agent_message(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConnectError(f"{self.target}: unreadable reply ({exc})") from None

    async def send_request(self, req: m.Request) -> int:
        req.id = next(self._ids)
        await self._send(req)
        return req.id

    async def request(self, req: m.Request, expect: type[R]) -> R:
        rid = await self.send_request(req)
        while True:
            reply = await self.recv()
            if getattr(reply, "id", rid) in (rid, 0) and not isinstance(reply, m.Update):
                return _expect(reply, expect, self.target)

    # --- typed requests (the same names as Client's) -----------------------------------------
    async def snapshot(self, top_tasks: int = 20) -> Snapshot:
        reply = await self.request(m.SnapshotRequest(top_tasks=top_tasks), m.SnapshotReply)
        return reply.snapshot

    async def tasks(self, **filters: Any) -> m.TaskPage:
        return await self.request(m.TaskListRequest(**filters), m.TaskPage)

    async def task(self, task_id: int) -> m.TaskDetail:
        return await self.request(m.TaskDetailRequest(task_id=task_id), m.TaskDetail)

    async def thread_stacks(self) -> list[m.ThreadStack]:
        return (await self.request(m.ThreadStacksRequest(), m.ThreadStacks)).threads

    async def queues(self) -> list[Any]:
        return (await self.request(m.QueueListRequest(), m.QueueList)).queues

    async def dump(self, max_tasks: int = 10_000) -> m.DumpReply:
        return await self.request(m.DumpRequest(max_tasks=max_tasks), m.DumpReply)

    async def cancel(self, task_id: int, message: str | None = None) -> str:
        return (await self.request(m.CancelTask(task_id=task_id, message=message), m.Ack)).detail

    async def gc_collect(self, generation: int = 2) -> str:
        return (await self.request(m.GcCollect(generation=generation), m.Ack)).detail

    async def exact_accounting(self, seconds: float) -> str:
        return (await self.request(m.ExactAccounting(seconds=seconds), m.Ack)).detail

    async def exact_report(self) -> dict[str, Any] | None:
        return (await self.request(m.ExactReportRequest(), m.ExactReport)).report

    async def stuck(self, min_tasks: int = 2, limit: int = 20) -> list[m.StuckGroup]:
        return (await self.request(m.StuckRequest(min_tasks=min_tasks, limit=limit),
                                   m.StuckReport)).groups

    async def ping(self) -> str:
        return (await self.request(m.Ping(), m.Ack)).detail

    async def subscribe(self, interval: float = 1.0,
                        top_tasks: int = 20) -> AsyncIterator[m.Update]:
        """Yield updates until the connection ends (full first, then changed-only). Other
        replies on this connection (to requests sent while streaming) are skipped: use a
        second client for requests. `introspect.client.stream` merges them into Snapshots."""
        await self.send_request(m.Subscribe(interval=interval, top_tasks=top_tasks))
        wait = max(self.timeout, interval * 3 + 2)
        while True:
            reply = await self.recv(timeout=wait)
            _raise_for(reply, self.target)
            if isinstance(reply, m.Update):
                yield reply

    async def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
