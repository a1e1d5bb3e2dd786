"""`/metrics` over HTTP, answered by the app's event loop or, when the loop is stuck, by a thread.

Why both (FINDINGS.md, "The GIL and an agent thread"; numbers in benchmarks/results/metrics.md):
a thread server starves for the GIL while the loop is saturated with I/O (prometheus_client's
`start_http_server` answered no scrape in 6 s), and a server on the loop cannot answer while the
loop is blocked. So one listening socket is watched by both:

- the app's loop, through `add_reader` callbacks (no tasks, no transports: nothing the app or
  our task counts can see), answers whenever the loop is running;
- a daemon thread sleeps in `select()` on the same socket and accepts a connection only when the
  loop is not serving: no loop attached, the loop stuck for longer than `TAKEOVER_AFTER`
  (`blocked_for()` readable from any thread), or a connection left pending for `PENDING_LIMIT`.
  A loop blocked in Python code or in a blocking call hands the GIL over every switch
  interval, so the thread answers within milliseconds then. Idle, the thread costs nothing.

Hostile clients: a request head must arrive within `HEADER_TIMEOUT`; one address holds at most
`MAX_PER_PEER` connections; when those or all loop slots are taken, the oldest connection still
sending its head makes room (a scrape sends its head at once, so half-sent requests can't lock
scrapes out). The Host header must be an IP address, `localhost`, this machine's name, the
bound address or a configured name (`INTROSPECT_METRICS_HOSTS`): a page of another site that a
local browser resolves to us (DNS rebinding) carries its own name and gets 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from introspect.errors import UserError
from introspect.metrics.after_fork import AfterFork
from introspect.textsafe import escape_for_log

log = logging.getLogger("introspect.metrics")
TAKEOVER_AFTER = 0.1  # seconds the loop may be stuck before the thread answers instead
PENDING_LIMIT = 1.0  # a connection nobody accepted for this long is taken by the thread
CONNECTION_TIMEOUT = 10.0  # a client that has not taken its whole answer by then is dropped
HEADER_TIMEOUT = 3.0  # a client that sends no full request head in time is dropped
MAX_REQUEST = 16 * 1024
MAX_LOOP_CONNECTIONS = 16
MAX_PER_PEER = 4  # connections from one address at once
LOCAL_NAMES = ("localhost", "localhost.localdomain")

Render = Callable[[str, str], tuple[bytes, str]]  # (accept header, served_by) → body, type
Route = Callable[[dict[str, str]], tuple[bytes, str]]  # request headers (lower-case) → body, type


class PortInUse(UserError):
    """The metrics port is held by another process (a worker may then take a port of its own)."""


@dataclass(eq=False)
class _Client:
    peer: str
    started: float = field(default_factory=time.monotonic)
    answering: bool = False  # its request head is in; the answer is being written


class ScrapeServer:
    """Binds at construction (so "port in use" is raised by `start_for_agent`)."""

    def __init__(self, host: str, port: int, render: Render,
                 loop_blocked_for: Callable[[], float],
                 routes: dict[str, Route] | None = None, *,
                 allowed_hosts: Iterable[str] = ()) -> None:
        self.render = render
        self.routes = dict(routes or {})  # more GET paths than /metrics (e.g. /sd)
        self.allowed_hosts = frozenset(
            name.lower().rstrip(".")
            for name in (*LOCAL_NAMES, socket.gethostname(), host, *allowed_hosts) if name)
        self.loop_blocked_for = loop_blocked_for
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        # No SO_REUSEADDR: a port held by another process must fail loudly, not be shared.
        try:
            sock.bind((host, port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            in_use = exc.errno == errno.EADDRINUSE
            error = PortInUse if in_use else UserError
            reason = "already in use" if in_use else exc.strerror
            raise error(f"cannot serve /metrics on {host}:{port}: {reason} (choose another "
                        "--metrics-port / INTROSPECT_METRICS_PORT, or 0 for a free one)"
                        ) from None
        sock.setblocking(False)
        self.sock = sock
        self.host = host
        self.port: int = sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop our reader is on
        self._loop_conns: dict[socket.socket, _Client] = {}
        self._owner_pid = os.getpid()
        _SERVERS.add(self)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._thread_main, name="introspect-metrics",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._detach_loop()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        for sock in (self.sock, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()

    def forget_after_fork(self) -> None:
        """In a forked child: the thread does not exist here; close our copies of the sockets
        so only the parent answers on the port."""
        self._stopping = True
        self._loop = None
        for sock in (self.sock, self._wake_r, self._wake_w, *self._loop_conns):
            with contextlib.suppress(OSError):
                sock.close()
        self._loop_conns.clear()

    # --- the app's loop ----------------------------------------------------------------------
    def on_loop_beat(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the loop thread every probe beat: serve from this loop, reap slow clients."""
        if self._stopping or os.getpid() != self._owner_pid:
            return
        if self._loop is not loop:
            self._loop = None
            loop.add_reader(self.sock.fileno(), self._loop_accept)
            self._loop = loop
        if self._loop_conns:
            now = time.monotonic()
            for conn, client in list(self._loop_conns.items()):
                limit = CONNECTION_TIMEOUT if client.answering else HEADER_TIMEOUT
                if now - client.started > limit:
                    self._loop_close(conn)

    def serving_loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def _detach_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return

        def remove() -> None:
            with contextlib.suppress(Exception):
                loop.remove_reader(self.sock.fileno())
            for conn in list(self._loop_conns):
                self._loop_close(conn)
            done.set()

        done = threading.Event()
        try:
            running_here = asyncio.get_running_loop() is loop
        except RuntimeError:
            running_here = False
        if running_here or not loop.is_running():
            remove()
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(remove)
            done.wait(1.0)  # a blocked loop: closing the fd removes it from epoll anyway

    def _loop_accept(self) -> None:
        loop = self._loop
        try:
            conn, addr = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # the thread took it
        except OSError:
            return
        peer = str(addr[0]) if isinstance(addr, tuple) else ""
        if loop is None or not self._make_room(peer):
            conn.close()
            return
        conn.setblocking(False)
        self._loop_conns[conn] = _Client(peer)
        buffer = bytearray()
        loop.add_reader(conn.fileno(), self._loop_read, loop, conn, buffer)
        self._loop_read(loop, conn, buffer)  # the request is often there already

    def _loop_read(self, loop: asyncio.AbstractEventLoop, conn: socket.socket,
                   buffer: bytearray) -> None:
        try:
            data = conn.recv(MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._loop_close(conn)
            return
        if not data:
            self._loop_close(conn)
            return
        buffer += data
        if b"\r\n\r\n" not in buffer and len(buffer) < MAX_REQUEST:
            return
        loop.remove_reader(conn.fileno())
        client = self._loop_conns.get(conn)
        if client is not None:
            client.answering = True
            client.started = time.monotonic()  # CONNECTION_TIMEOUT to take the answer
        response = memoryview(self._respond(bytes(buffer), "loop"))
        self._loop_write(loop, conn, response)

    def _loop_write(self, loop: asyncio.AbstractEventLoop, conn: socket.socket,
                    pending: memoryview) -> None:
        try:
            sent = conn.send(pending)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._loop_close(conn)
            return
        rest = pending[sent:]
        if not rest:
            self._loop_close(conn)
            return
        # A slow reader: finish when the socket can take more (re-registered each time).
        with contextlib.suppress(Exception):
            loop.remove_writer(conn.fileno())
        loop.add_writer(conn.fileno(), self._loop_write, loop, conn, rest)

    def _make_room(self, peer: str) -> bool:
        """Whether a new connection from `peer` may be served on the loop. Over its
        per-address cap, or when every slot is taken, the oldest connection (of that peer,
        or of all) still sending its request head is closed for it; refused if there is none."""
        clients = self._loop_conns
        for of_peer, cap in ((True, MAX_PER_PEER), (False, MAX_LOOP_CONNECTIONS)):
            crowd = [conn for conn, c in clients.items() if c.peer == peer or not of_peer]
            if len(crowd) < cap:
                continue
            reading = [conn for conn in crowd if not clients[conn].answering]
            if not reading:
                return False
            self._loop_close(min(reading, key=lambda conn: clients[conn].started))
        return True

    def _loop_close(self, conn: socket.socket) -> None:
        self._loop_conns.pop(conn, None)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.remove_reader(conn.fileno())
                loop.remove_writer(conn.fileno())
        with contextlib.suppress(OSError):
            conn.close()

    # --- the thread ---------------------------------------------------------------------------
    def _loop_serving(self) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
        try:
            return self.loop_blocked_for() < TAKEOVER_AFTER
        except Exception:
            return False

    def _thread_main(self) -> None:
        pending_since: float | None = None
        while not self._stopping:
            try:
                readable, _, _ = select.select([self.sock, self._wake_r], [], [], 5.0)
            except (OSError, ValueError):
                return  # closed under us: stopping
            if self._stopping:
                return
            if self.sock not in readable:
                pending_since = None
                continue
            now = time.monotonic()
            if pending_since is None:
                pending_since = now
            if self._loop_serving() and now - pending_since < PENDING_LIMIT:
                time.sleep(0.01)  # the loop will take it; look again shortly
                continue
            pending_since = None
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # the loop took it after all
            except OSError:
                if self._stopping:
                    return
                continue
            try:
                self._thread_serve(conn)
            except Exception as exc:  # one bad client never stops the thread
                log.debug("introspect: /metrics client failed: %s", escape_for_log(exc))
            finally:
                with contextlib.suppress(OSError):
                    conn.close()

    def _thread_serve(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        deadline = time.monotonic() + HEADER_TIMEOUT  # for the whole head: no slow drip
        buffer = b""
        while b"\r\n\r\n" not in buffer and len(buffer) < MAX_REQUEST:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(left)
            data = conn.recv(MAX_REQUEST)
            if not data:
                return
            buffer += data
        conn.settimeout(CONNECTION_TIMEOUT)
        conn.sendall(self._respond(buffer, "thread"))

    # --- HTTP ---------------------------------------------------------------------------------
    def _respond(self, request: bytes, served_by: str) -> bytes:
        head, _, _ = request.partition(b"\r\n\r\n")
        lines = head.decode("latin-1", "replace").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _http(400, b"bad request\n", "text/plain")
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return _http(405, b"method not allowed\n", "text/plain")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if "host" in headers and not self.host_allowed(headers["host"]):
            return _http(403, b"forbidden: this Host is not accepted (INTROSPECT_METRICS_HOSTS "
                         b"lists extra names)\n", "text/plain")
        path = target.split("?", 1)[0]
        if path == "/":
            return _http(200, b"introspect agent: metrics at /metrics\n", "text/plain",
                         head_only=method == "HEAD")
        if path != "/metrics" and path not in self.routes:
            return _http(404, b"not found: try /metrics\n", "text/plain")
        try:
            if path == "/metrics":
                body, content_type = self.render(headers.get("accept", ""), served_by)
            else:
                body, content_type = self.routes[path](headers)
        except Exception as exc:
            log.warning("introspect: answering %s failed: %s", escape_for_log(path),
                        escape_for_log(exc))
            return _http(500, b"metrics collection failed\n", "text/plain")
        return _http(200, body, content_type, head_only=method == "HEAD")

    def host_allowed(self, value: str) -> bool:
        """An IP address (DNS rebinding needs a name), or a name we answer to."""
        name = value.strip().lower()
        if name.startswith("["):
            name = name[1:name.find("]")] if "]" in name else ""
        elif name.count(":") == 1:
            name = name.rsplit(":", 1)[0]
        name = name.rstrip(".")
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name in self.allowed_hosts


def _http(status: int, body: bytes, content_type: str, head_only: bool = False) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
              405: "Method Not Allowed",
              500: "Internal Server Error"}[status]
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


_SERVERS = AfterFork("forget_after_fork", "scrape server")
