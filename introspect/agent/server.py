"""The agent's server: its own thread and event loop, so it answers while the app's loop is
blocked (the GIL is released to it every switch interval). Unix socket by default (0600, in
the per-user runtime dir); TCP only with a token (or `insecure_no_auth` on loopback); TLS with
the standard `ssl` module. Every connection is bounded: handshake deadline, frame limits,
write-buffer limit, a maximum number of connections.
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
import sys
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
MAX_CONNECTIONS = 128  # beyond this, new connections are answered `busy` and closed


class Listener:
    def __init__(self, sock: socket.socket, kind: str, address: str, path: Path | None = None,
                 tls: bool = False):
        self.sock = sock
        self.kind = kind  # "unix" | "tcp"
        self.address = address
        self.path = path
        self.tls = tls


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
        self.handshake_timeout = self.config.handshake_timeout
        self.ticker = handlers.SnapshotTicker(agent)  # shared by every subscriber
        self._owner_pid = os.getpid()
        self._ready = threading.Event()
        self._stopping = False
        self.ssl_context: ssl.SSLContext | None = None
        self.connections: set[asyncio.Task] = set()
        self._client_socks: set[socket.socket] = set()

    @property
    def addresses(self) -> list[str]:
        return [lst.address for lst in self.listeners]

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.runtime_dir = discovery.runtime_dir(create=True)
        except (OSError, discovery.RuntimeDirError) as exc:
            raise UserError(f"agent runtime dir: {exc}") from None
        specs = _own_specs(list(self.config.listen) or ["unix:"], self.runtime_dir)
        try:
            for spec in specs:
                if spec.startswith("unix:"):
                    self.listeners.append(self._bind_unix(spec[len("unix:"):]))
                else:
                    self.listeners.append(self._bind_tcp(spec[len("tcp://"):]))
        except BaseException:
            self._remove_files()
            raise
        self.thread = threading.Thread(target=self._run, name="introspect-agent", daemon=True)
        self.thread.start()
        self._ready.wait(5.0)
        self.announce()

    def _bind_unix(self, path_text: str) -> Listener:
        path = Path(path_text) if path_text else discovery.socket_path(os.getpid(),
                                                                        self.runtime_dir)
        if path.is_socket():
            if _socket_answers(path):
                raise UserError(f"cannot listen on unix:{path}: another process is listening "
                                "there")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left behind by a process that died (kill -9)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is born 0600: no window for others
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
        check_tcp_allowed(self.config, host, hostport)
        if self.config.tls_cert and self.ssl_context is None:
            self.ssl_context = server_ssl_context(self.config)
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
        tls = self.ssl_context is not None
        return Listener(sock, "tcp", f"{'tls' if tls else 'tcp'}://{shown}:{real_port}", tls=tls)

    def announce(self) -> None:
        if self.runtime_dir is None:
            return
        unix = next((lst for lst in self.listeners if lst.kind == "unix"), None)
        tcp = next((lst for lst in self.listeners if lst.kind == "tcp"), None)
        metrics = self.agent.extensions.get("metrics")
        ann = discovery.Announcement(
            pid=os.getpid(), ppid=os.getppid(), argv=list(sys.argv),
            started_at=self.agent.started_at, socket=str(unix.path) if unix else "",
            tcp=tcp.address if tcp else None, metrics=getattr(metrics, "url", None),
            python=sys.version.split()[0], listen=self.addresses)
        try:
            discovery.write_announcement(ann, self.runtime_dir)
        except OSError as exc:
            log.warning("introspect: cannot write announcement: %s", exc)

    def _run(self) -> None:
        self.agent.agent_thread_ids.add(threading.get_ident())
        loop = asyncio.new_event_loop()  # private loop: never the app's policy hooks
        loop.set_exception_handler(self._loop_exception)
        self.loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:  # pragma: no cover - never into the host
            log.warning("introspect: agent server stopped: %r", exc)
        finally:
            with contextlib.suppress(Exception):
                loop.close()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Our private loop's errors are counted, never printed into the host's stderr."""
        exc = context.get("exception")
        self.agent.collector_errors.record("server", exc or RuntimeError(context.get("message")))

    async def _serve(self) -> None:
        servers = []
        for lst in self.listeners:
            if lst.kind == "unix":
                srv = await asyncio.start_unix_server(
                    lambda r, w, lst=lst: self._client(r, w, lst), sock=lst.sock)
            else:  # TLS is started per connection, under the handshake deadline and audited
                srv = await asyncio.start_server(
                    lambda r, w, lst=lst: self._client(r, w, lst), sock=lst.sock)
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
            with contextlib.suppress(OSError):
                discovery.announcement_path(os.getpid(), self.runtime_dir).unlink()

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited listening and client sockets (a client of
        the parent must see EOF when the parent dies, not wait for this child), touch no file
        of the parent."""
        for sock in [lst.sock for lst in self.listeners] + list(self._client_socks):
            with contextlib.suppress(OSError):
                sock.close()
        self._client_socks = set()
        self.listeners = []
        self.loop = None
        self.thread = None

    # --- one client --------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      listener: Listener) -> None:
        if listener.tls:
            # Before any await: the ClientHello must stay in the kernel until start_tls, or
            # the plain stream reader swallows it and the TLS handshake stalls.
            writer.transport.pause_reading()
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        sock = writer.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            self._client_socks.add(sock)
        self.client_count += 1
        peer = _peer_name(writer, listener)
        writer.transport.set_write_buffer_limits(high=handlers.WRITE_BUFFER_LIMIT)
        try:
            if self.client_count > MAX_CONNECTIONS:
                self.audit.record("connect", "busy", peer)
                await _send_quietly(writer, m.ErrorReply(
                    code="busy", message=f"the agent already serves {MAX_CONNECTIONS} "
                    "connections"))
                return
            session = await asyncio.wait_for(
                self._secure_handshake(reader, writer, listener, peer), self.handshake_timeout)
            if session is not None:
                await handlers.serve_requests(self, session, reader, writer)
        except TimeoutError:
            self.audit.record("handshake", "expired", peer)
            await _send_quietly(writer, m.ErrorReply(
                code="auth_failed", message=f"handshake not completed within "
                f"{self.handshake_timeout:g}s"))
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
            if isinstance(sock, socket.socket):
                self._client_socks.discard(sock)
            with contextlib.suppress(Exception):
                writer.close()

    async def _secure_handshake(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter, listener: Listener,
                                peer: str) -> handlers.Session | None:
        if listener.tls and self.ssl_context is not None:
            try:
                await writer.start_tls(self.ssl_context)
            except (ssl.SSLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or type(exc).__name__
                self.audit.record("tls", "denied", peer, reason=str(reason))
                return None
        return await self._handshake(reader, writer, listener, peer)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         listener: Listener, peer: str) -> handlers.Session | None:
        hello = await _read_message(reader)
        if not isinstance(hello, m.Hello):
            self.audit.record("handshake", "invalid", peer)
            await _send_quietly(writer, m.ErrorReply(code="bad_request",
                                                     message="expected a hello message"))
            return None
        shared = sorted(set(hello.versions) & set(SUPPORTED_VERSIONS))
        client_name = hello.client[:100]
        if not shared:
            self.audit.record("handshake", "incompatible", peer, client=client_name,
                              offered=hello.versions[:8])
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
        reply = await _read_message(reader)
        if not isinstance(reply, m.Authenticate):
            self.audit.record("handshake", "invalid", peer, client=client_name)
            await _send_quietly(writer, m.ErrorReply(code="bad_request",
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
            await _send_quietly(writer, m.ErrorReply(
                code="auth_failed", message="authentication failed: "
                + ("no token presented" if not reply.proof else "wrong token")))
            return None
        await _send(writer, m.Welcome(role=role, pid=os.getpid(), version=version))
        return handlers.Session(peer=peer, role=role, client=client_name, version=version)

    def _role_for(self, proof: bytes, agent_nonce: bytes, client_nonce: bytes) -> str | None:
        if len(client_nonce) < 16 or len(client_nonce) > 64:
            return None  # a short client nonce would let a replayed proof through
        # Both tokens are always checked so the timing does not tell which one matched.
        control = bool(self.config.token) and auth.verify(self.config.token or "", agent_nonce,
                                                          client_nonce, proof)
        read = bool(self.config.read_token) and auth.verify(self.config.read_token or "",
                                                            agent_nonce, client_nonce, proof)
        return "control" if control else ("read" if read else None)


async def _read_message(reader: asyncio.StreamReader) -> m.Message | None:
    """One handshake message; None for anything undecodable (the caller answers and closes)."""
    data = await framing.read_frame(reader, framing.MAX_HANDSHAKE_FRAME)
    try:
        return m.decode_client_message(data)
    except (m.msgspec.DecodeError, m.msgspec.ValidationError):
        return None


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


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _own_specs(specs: list[str], directory: Path) -> list[str]:
    """Listen addresses inherited from an agent-enabled ancestor (a fork child, a spawned
    multiprocessing worker, a gunicorn worker all inherit INTROSPECT_LISTEN) belong to that
    ancestor: the child takes the default per-user socket instead of stealing or failing."""
    fixed = [spec for spec in specs if _is_fixed(spec)]
    if not fixed:
        return specs
    held = _addresses_of_ancestors(directory)
    own = [spec for spec in specs if not (_is_fixed(spec) and _normalise(spec) in held)]
    if len(own) != len(specs):
        log.info("introspect: %s held by a parent agent; this process listens on its own "
                 "per-user socket", ", ".join(s for s in specs if s not in own))
        if not any(spec.startswith("unix:") for spec in own):
            own.insert(0, "unix:")
    return own


def _is_fixed(spec: str) -> bool:
    if spec.startswith("unix:"):
        return bool(spec[len("unix:"):])
    return not spec.endswith(":0")


def _normalise(spec: str) -> str:
    if spec.startswith("unix:"):
        return "unix:" + os.path.abspath(spec[len("unix:"):])
    return spec.replace("tls://", "tcp://").replace("localhost", "127.0.0.1")


def _addresses_of_ancestors(directory: Path) -> set[str]:
    try:
        import psutil

        ancestors = {p.pid for p in psutil.Process().parents()}
    except Exception:
        ancestors = {os.getppid()}
    held: set[str] = set()
    for ann in discovery.list_agents(directory, clean=False):
        if ann.pid in ancestors:
            held.update(_normalise(a) for a in ann.listen)
    return held


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tcp_allowed(config: Any, host: str, hostport: str) -> None:
    """TCP needs a token; `insecure_no_auth` is accepted on loopback only."""
    if config.token or config.read_token:
        return
    if not config.insecure_no_auth:
        raise UserError(f"refusing to listen on tcp://{hostport} without a token: set "
                        "INTROSPECT_TOKEN (or --insecure-no-auth, loopback only)")
    if not _is_loopback(host):
        raise UserError(f"--insecure-no-auth is allowed on loopback addresses only, not {host}")


def server_ssl_context(config: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if not config.tls_key and not config.tls_cert:
        raise UserError("TLS configuration: INTROSPECT_TLS_CERT is required")
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_client_ca:
            context.load_verify_locations(config.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"TLS configuration: {exc}") from None
    return context
