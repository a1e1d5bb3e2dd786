"""The agent's server: its own thread and event loop, so it answers while the app's loop is
blocked (the GIL is released to it every switch interval). Unix socket by default (0600, in
the per-user runtime dir); TCP only with a token (or `insecure_no_auth` on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import ssl
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from introspect.agent import handlers
from introspect.agent.audit import Audit
from introspect.errors import UserError
from introspect.protocol import auth, discovery, framing
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS

if TYPE_CHECKING:
    from introspect.agent.core import Agent

log = logging.getLogger("introspect.agent")
HANDSHAKE_TIMEOUT = 5.0
WRITE_BUFFER_LIMIT = 256 * 1024  # per client; a slow reader gets fewer updates, not more memory


class Listener:
    def __init__(self, sock: socket.socket, kind: str, address: str, path: Path | None = None):
        self.sock = sock
        self.kind = kind  # "unix" | "tcp"
        self.address = address
        self.path = path


class AgentServer:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.config = agent.config
        self.audit = Audit(self.config.audit_log)
        self.listeners: list[Listener] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.client_count = 0
        self.runtime_dir: Path | None = None
        self._owner_pid = os.getpid()
        self._ready = threading.Event()
        self._stopping = False
        self.ssl_context: ssl.SSLContext | None = None
        self.connections: set[asyncio.Task] = set()

    @property
    def addresses(self) -> list[str]:
        return [lst.address for lst in self.listeners]

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        specs = list(self.config.listen) or ["unix:"]
        for spec in specs:
            if spec.startswith("unix:"):
                self.listeners.append(self._bind_unix(spec[len("unix:"):]))
            else:
                self.listeners.append(self._bind_tcp(spec[len("tcp://"):]))
        self.thread = threading.Thread(target=self._run, name="introspect-agent", daemon=True)
        self.thread.start()
        self._ready.wait(5.0)
        self.announce()

    def _bind_unix(self, path_text: str) -> Listener:
        if path_text:
            path = Path(path_text)
        else:
            self.runtime_dir = discovery.runtime_dir(create=True)
            path = discovery.socket_path(os.getpid(), self.runtime_dir)
        with contextlib.suppress(FileNotFoundError):
            if path.is_socket():
                path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            raise UserError(f"cannot listen on unix:{path}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        return Listener(sock, "unix", f"unix:{path}", path)

    def _bind_tcp(self, hostport: str) -> Listener:
        host, _, port_text = hostport.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            port = int(port_text)
        except ValueError:
            raise UserError(f"listen address tcp://{hostport}: the port must be a number") from None
        if not (self.config.token or self.config.read_token):
            if not self.config.insecure_no_auth:
                raise UserError(f"refusing to listen on tcp://{hostport} without a token: set "
                                "INTROSPECT_TOKEN (or --insecure-no-auth, loopback only)")
            if not _is_loopback(host):
                raise UserError("--insecure-no-auth is allowed on loopback addresses only, "
                                f"not {host}")
        if self.config.tls_cert:
            self.ssl_context = _server_ssl(self.config)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise UserError(f"cannot listen on tcp://{hostport}: {exc.strerror}") from None
        sock.listen(64)
        sock.setblocking(False)
        real_port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        return Listener(sock, "tcp", f"tcp://{shown}:{real_port}")

    def announce(self) -> None:
        if self.runtime_dir is None:
            return
        unix = next((lst for lst in self.listeners if lst.kind == "unix"), None)
        tcp = next((lst for lst in self.listeners if lst.kind == "tcp"), None)
        metrics = self.agent.extensions.get("metrics")
        import sys

        ann = discovery.Announcement(
            pid=os.getpid(), ppid=os.getppid(), argv=list(sys.argv),
            started_at=self.agent.started_at, socket=str(unix.path) if unix else "",
            tcp=tcp.address if tcp else None, metrics=getattr(metrics, "url", None),
            python=sys.version.split()[0])
        try:
            discovery.write_announcement(ann, self.runtime_dir)
        except OSError as exc:
            log.warning("introspect: cannot write announcement: %s", exc)

    def _run(self) -> None:
        self.agent.agent_thread_ids.add(threading.get_ident())
        loop = asyncio.new_event_loop()  # private loop: never the app's policy hooks
        self.loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:  # pragma: no cover - never into the host
            log.warning("introspect: agent server stopped: %r", exc)
        finally:
            with contextlib.suppress(Exception):
                loop.close()

    async def _serve(self) -> None:
        servers = []
        for lst in self.listeners:
            if lst.kind == "unix":
                srv = await asyncio.start_unix_server(
                    lambda r, w, lst=lst: self._client(r, w, lst), sock=lst.sock)
            else:
                srv = await asyncio.start_server(
                    lambda r, w, lst=lst: self._client(r, w, lst), sock=lst.sock,
                    ssl=self.ssl_context)
            servers.append(srv)
        self._stop_event = asyncio.Event()
        self._ready.set()
        await self._stop_event.wait()
        for srv in servers:
            srv.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.wait(list(self.connections), timeout=1.0)

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop_event.set)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(2.0)
        self._remove_files()

    def _remove_files(self) -> None:
        if os.getpid() != self._owner_pid:
            return
        for lst in self.listeners:
            with contextlib.suppress(OSError):
                lst.sock.close()
            if lst.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    lst.path.unlink()
        if self.runtime_dir is not None:
            discovery.remove_announcement(os.getpid(), self.runtime_dir)

    def forget_after_fork(self) -> None:
        """In a forked child: close inherited listening sockets, touch no file of the parent."""
        for lst in self.listeners:
            with contextlib.suppress(OSError):
                lst.sock.close()
        self.listeners = []
        self.loop = None
        self.thread = None

    # --- one client --------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      listener: Listener) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        self.client_count += 1
        peer = _peer_name(writer, listener)
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_LIMIT)
        try:
            session = await asyncio.wait_for(self._handshake(reader, writer, listener, peer),
                                             HANDSHAKE_TIMEOUT)
            if session is not None:
                await handlers.serve_requests(self, session, reader, writer)
        except TimeoutError:
            self.audit.record("handshake", "expired", peer)
            await _send_quietly(writer, m.ErrorReply(code="auth_failed",
                                                     message="handshake timed out"))
        except (EOFError, ConnectionError, framing.FrameError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.agent.collector_errors.record("server", exc)
        finally:
            self.client_count -= 1
            if task is not None:
                self.connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         listener: Listener, peer: str) -> handlers.Session | None:
        try:
            hello = m.decode_client_message(
                await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT))
        except (ValueError, TypeError, m.msgspec.DecodeError, m.msgspec.ValidationError):
            await _send_quietly(writer, m.ErrorReply(code="bad_request",
                                                     message="expected a hello message"))
            return None
        if not isinstance(hello, m.Hello):
            await _send_quietly(writer, m.ErrorReply(code="bad_request",
                                                     message="expected a hello message"))
            return None
        shared = sorted(set(hello.versions) & set(SUPPORTED_VERSIONS))
        if not shared:
            await _send_quietly(writer, m.ErrorReply(
                code="incompatible",
                message=f"agent speaks protocol {list(SUPPORTED_VERSIONS)}, client offered "
                        f"{hello.versions[:8]}: upgrade the older side"))
            return None
        version = shared[-1]
        trusted_local = listener.kind == "unix" and _same_user(writer)
        tokens_configured = bool(self.config.token or self.config.read_token)
        needs_token = not trusted_local and tokens_configured
        agent_nonce = auth.new_nonce()
        await _send(writer, m.Challenge(version=version, agent_nonce=agent_nonce,
                                        auth="token" if needs_token else "none",
                                        agent_pid=os.getpid()))
        reply = m.decode_client_message(
            await framing.read_frame(reader, framing.MAX_FRAME_TO_AGENT))
        if not isinstance(reply, m.Authenticate):
            await _send_quietly(writer, m.ErrorReply(code="bad_request",
                                                     message="expected authenticate"))
            return None
        role: str | None
        if not needs_token:
            role = "control"
            if listener.kind == "tcp" and not tokens_configured:
                role = "control"  # insecure_no_auth on loopback, by explicit choice
        else:
            role = None
            proof = reply.proof or b""
            nonce = hello.client_nonce
            if len(nonce) >= 16:
                if self.config.token and auth.verify(self.config.token, agent_nonce, nonce,
                                                     proof):
                    role = "control"
                elif self.config.read_token and auth.verify(self.config.read_token,
                                                            agent_nonce, nonce, proof):
                    role = "read"
        if role is None:
            self.audit.record("authenticate", "denied", peer, client=hello.client[:100])
            await _send_quietly(writer, m.ErrorReply(code="auth_failed",
                                                     message="authentication failed: wrong or "
                                                             "missing token"))
            return None
        await _send(writer, m.Welcome(role=role, pid=os.getpid(), version=version))
        return handlers.Session(peer=peer, role=role, client=hello.client[:100],
                                version=version)


async def _send(writer: asyncio.StreamWriter, message: m.Message) -> None:
    writer.write(framing.pack(m.encode(message)))
    await writer.drain()


async def _send_quietly(writer: asyncio.StreamWriter, message: m.Message) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_send(writer, message), 1.0)


def _peer_name(writer: asyncio.StreamWriter, listener: Listener) -> str:
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_ssl(config: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_client_ca:
            context.load_verify_locations(config.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"TLS configuration: {exc}") from None
    return context


