"""The agent's server: its own thread and private event loop, so it answers while the app's
loop is blocked (the GIL is released to it every switch interval). It accepts connections on
the listeners, refuses Unix-socket peers of other uids, caps logins and sessions, runs the
login and hands each session to the request handlers; a sweeper ends stalled and idle
connections. Announced in the runtime dir; forgotten in a forked child. What only a connected
client needs (`clients.py`: login, requests, the protocol) is imported by this thread once it
listens, not by `start()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from introspect.agent import permanent, watch
from introspect.agent.audit import Audit
from introspect.agent.late_imports import late_import
from introspect.agent.server.listeners import Listener, bind_all, close_all
from introspect.agent.server.refusals import RefusalLog
from introspect.errors import UserError
from introspect.protocol import discovery

if TYPE_CHECKING:
    from introspect.agent.core import Agent
    from introspect.agent.server.connections import ConnectionTable
    from introspect.agent.server.handshake import Handshake
    from introspect.agent.server.heavy import HeavyReplies
    from introspect.agent.server.stream import SnapshotTicker

log = logging.getLogger("introspect.agent")
MAX_SWEEP_INTERVAL = 1.0
SETTLE_ATTEMPTS = 20  # a collection running at that moment is rare; 20 tries, 0.1 s apart
SETTLE_RETRY_SECONDS = 0.1
RUNTIME_SETTLE_SECONDS = 30.0  # how long something the agent replaced may stay settled


class AgentServer:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.config = agent.config
        self.audit = Audit(self.config.audit_log)
        self.refusals = RefusalLog(self.audit)
        # Made at the first connection (clients.py), shared by all: the open connections
        # and their limits (swept by `sweep_connections` from then on), the login (its
        # failure counts), the snapshot every subscriber shares, the queue of heavy replies.
        self.table: ConnectionTable | None = None
        self.sweeper: asyncio.Future | None = None
        self.handshake: Handshake | None = None
        self.ticker: SnapshotTicker | None = None
        self.heavy: HeavyReplies | None = None
        self.listeners: list[Listener] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.runtime_dir: Path | None = None
        self._owner_pid = os.getpid()
        self._ready = threading.Event()
        self._stopping = False
        self.connections: set[asyncio.Task] = set()
        # fd -> (st_dev, st_ino) of each client socket: asyncio hands back a TransportSocket
        # wrapper, not the socket.socket, so the fd itself is what a forked child must close
        self._client_fds: dict[int, tuple[int, int]] = {}

    @property
    def client_count(self) -> int:
        """Open connections, logged in or not (a stalled one until its socket is closed)."""
        table = self.table
        return len(table) if table is not None else 0

    @property
    def addresses(self) -> list[str]:
        return [lst.address for lst in self.listeners]

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.runtime_dir = discovery.runtime_dir(create=True)
        except (OSError, discovery.RuntimeDirError) as exc:
            raise UserError(f"agent runtime dir: {exc}") from None
        self.listeners = bind_all(self.config, self.runtime_dir)
        self.thread = threading.Thread(target=self._run, name="introspect-agent", daemon=True)
        self.thread.start()
        self._ready.wait(5.0)
        self.announce()

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
        # private loop, never the app's policy's; its waits hand the GIL off (watch.py)
        loop = asyncio.SelectorEventLoop(watch.server_selector())
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

    async def _settle_definitions(self) -> None:
        """Move the definitions of what start() and this thread imported out of the
        collector's generations (agent/permanent.py), here, off the app's threads: ~20 ms
        of this thread's time, once."""
        for _ in range(SETTLE_ATTEMPTS):
            try:
                if permanent.settle_imported() >= 0:
                    return
            except Exception as exc:  # pragma: no cover - never the host's problem
                self.agent.collector_errors.record("server", exc)
                return
            await asyncio.sleep(SETTLE_RETRY_SECONDS)  # a collection was running: later

    async def _settle_runtime(self) -> None:
        """Move the agent's run-time state out of the collector's generations too, once
        start() has made all of it (permanent.py `settle_runtime`; a few ms of this thread)."""
        for _ in range(SETTLE_ATTEMPTS):
            if self.agent.start_returned_at is not None or self._stopping:
                break
            await asyncio.sleep(SETTLE_RETRY_SECONDS)
        for _ in range(SETTLE_ATTEMPTS):
            try:
                if permanent.settle_runtime(self.agent) >= 0:
                    return
            except Exception as exc:  # pragma: no cover - never the host's problem
                self.agent.collector_errors.record("server", exc)
                return
            await asyncio.sleep(SETTLE_RETRY_SECONDS)

    async def _settle_until_stopped(self) -> None:
        """Settle the definitions, then the run-time state, and settle the run-time state
        again every RUNTIME_SETTLE_SECONDS until stop(): what it replaced meanwhile goes back
        to the collector then (permanent.py)."""
        try:
            await self._settle_definitions()
            await self._settle_runtime()
        finally:
            permanent.start_settled.set()
        while not self._stop_event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), RUNTIME_SETTLE_SECONDS)
            if not self._stop_event.is_set():
                await self._settle_runtime()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        servers = []
        for lst in self.listeners:
            # asyncio.start_server's plumbing, with a reader that notes when data arrives.
            # TLS is started per connection, under the handshake deadline and audited.
            def protocol(lst: Listener = lst) -> asyncio.StreamReaderProtocol:
                # At the first connection only: this thread imports what serving a client
                # needs (it needs nothing from the app's loop thread, holds no agent lock).
                clients = late_import("introspect.agent.server.clients")

                return asyncio.StreamReaderProtocol(
                    clients.ActivityReader(), lambda r, w: self._client(r, w, lst))

            if lst.kind == "unix":
                srv = await loop.create_unix_server(protocol, sock=lst.sock)
            else:
                srv = await loop.create_server(protocol, sock=lst.sock)
            servers.append(srv)
        self._stop_event = asyncio.Event()
        self._ready.set()
        # Then, off start()'s path, this thread imports what the first client needs. Waiting
        # for that first client cost it ~1 s against a saturated loop (each of the imports'
        # file reads lets the GIL go, and each re-take waits a switch interval): the answer
        # must not depend on how busy the app is.
        for module in ("introspect.agent.server.clients", "introspect.agent.snapshot_builder"):
            try:
                late_import(module)
            except Exception as exc:  # pragma: no cover - a broken install: first use says so
                self.agent.collector_errors.record("server", exc)
        await self._settle_until_stopped()
        if self.sweeper is not None:
            self.sweeper.cancel()
        for srv in servers:
            srv.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.wait(list(self.connections), timeout=1.0)
        self.refusals.flush()

    async def sweep_connections(self) -> None:
        """Started with the connection table, at the first connection (clients.py)."""
        assert self.table is not None
        idle, stall = self.config.idle_timeout, self.config.stall_timeout
        interval = min(MAX_SWEEP_INTERVAL, stall / 4, idle / 4 if idle else MAX_SWEEP_INTERVAL)
        while True:
            await asyncio.sleep(interval)
            try:
                for conn, why in self.table.sweep(idle, stall):
                    self.refusals.record("connection", why, conn.peer.key, conn.peer.name)
            except Exception as exc:
                self.agent.collector_errors.record("server", exc)

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
        close_all(self.listeners)
        if self.runtime_dir is not None:
            with contextlib.suppress(OSError):
                discovery.announcement_path(os.getpid(), self.runtime_dir).unlink()

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited listening and client sockets (a client of
        the parent must see EOF when the parent dies, not wait for this child), touch no file
        of the parent."""
        for sock in [lst.sock for lst in self.listeners]:
            with contextlib.suppress(OSError):
                sock.close()
        for fd, identity in list(self._client_fds.items()):
            # only if the fd is still that socket: its number may have been closed and
            # reused by the app in the moment before the parent's connection forgot it
            with contextlib.suppress(OSError):
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == identity:
                    os.close(fd)
        self._client_fds = {}
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
        client_fd = self._remember_fd(writer)
        try:
            clients = late_import("introspect.agent.server.clients")  # see `protocol`

            await clients.serve(self, reader, writer, listener)
        except Exception as exc:  # pragma: no cover - clients.serve contains its own
            self.agent.collector_errors.record("server", exc)
            with contextlib.suppress(Exception):
                writer.transport.abort()
        finally:
            if task is not None:
                self.connections.discard(task)
            if client_fd is not None:
                self._client_fds.pop(client_fd, None)

    def _remember_fd(self, writer: asyncio.StreamWriter) -> int | None:
        """Record the client socket's fd (and its inode) for `forget_after_fork`."""
        sock = writer.get_extra_info("socket")
        try:
            fd = sock.fileno()
            st = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        self._client_fds[fd] = (st.st_dev, st.st_ino)
        return fd

