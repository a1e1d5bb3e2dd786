"""The Agent: owns the collectors, the detectors (blocking, busy-time sampling, exact
accounting), the observed loop and the server; builds snapshots."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from introspect.agent.blocking import BlockingDetector
from introspect.agent.busy import BusySampler
from introspect.agent.collectors.discovery_hooks import DiscoveryHooks, Registry
from introspect.agent.collectors.errors import ErrorCollector
from introspect.agent.collectors.gcstats import GcCollector
from introspect.agent.collectors.loop import LoopCollector
from introspect.agent.collectors.process import ProcessCollector
from introspect.agent.collectors.tasks import TaskCollector
from introspect.agent.events import CollectorErrors, EventLog
from introspect.agent.late_imports import late_import
from introspect.agent.loop_attach import LoopWatcher, instrument_loop, uninstrument_loop
from introspect.config import AgentConfig
from introspect.errors import UserError
from introspect.textsafe import escape_for_log

if TYPE_CHECKING:
    from introspect.agent.exact import ExactMode
    from introspect.protocol.snapshot import Snapshot

log = logging.getLogger("introspect.agent")


ADOPT_CHUNK = 2000  # pre-existing tasks accounted per loop iteration


class Agent:
    """One per process. Create with `introspect.start()`; the constructor starts nothing."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        self.started_at = time.time()
        self.collector_errors = CollectorErrors()
        self.events = EventLog(config.recent_events)
        self.errors = ErrorCollector(config.recent_errors, config.error_max_age)
        self.tasks = TaskCollector(self.errors.task_crashed, self.collector_errors.record,
                                   created_at=config.task_created_at)
        self.loop_probe = LoopCollector(config.lag_probe_interval)
        self.loop_probe.on_beat.append(self.tasks.flush)  # finished young tasks, each beat
        self.gc = GcCollector()
        self.process = ProcessCollector()
        self.queues = Registry()
        self.executors = Registry()
        self._hooks = DiscoveryHooks(self.queues, self.executors, self.collector_errors.record)
        self._watcher = LoopWatcher(self.attach_loop, self._loop_runs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.agent_thread_ids: set[int] = set()
        # Detectors: None when they could not start (counted in collector_errors).
        self.blocking: BlockingDetector | None = None
        self.sampler: BusySampler | None = None
        self._exact: ExactMode | None = None  # on demand (`exact`)
        self.extensions: dict[str, Any] = {}  # optional parts: metrics, otlp, console
        self.server: Any = None
        self.running = False
        self.start_returned_at: float | None = None  # monotonic; set as start() returns
        self._lock = threading.RLock()
        self.collect_seconds_last = 0.0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Agent:
        with self._lock:
            if self.running:
                return self
            self.start_returned_at = None
            self.gc.install()
            self.errors.install_thread_hook()
            self._hooks.install()
            self._watcher.install()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self.attach_loop(loop)
            from introspect.agent.server import AgentServer

            self.server = AgentServer(self)
            self.server.start()
            self.running = True
            from introspect.agent import extensions

            try:
                self._start_detectors()
                extensions.start_all(self)
            except BaseException:
                self.stop()  # a misconfigured part: leave nothing of the agent behind
                raise
            self.server.announce()  # again: the announcement now names the exporters
            # A loop attached from one of its own callbacks has been busy with start() until
            # now: a block of the app's can only begin here (blocking.py `busy_since`).
            self.start_returned_at = time.monotonic()
            return self

    def stop(self) -> None:
        with self._lock:
            if not self.running:
                return
            self.running = False
            from introspect.agent import extensions

            extensions.stop_all(self)
            self._stop_detectors()
            from introspect.agent import host_log

            host_log.flush(self)  # the counts since the last summary, not lost at exit
            if self.server is not None:
                self.server.stop()
                self.server = None
            self._watcher.uninstall()
            self._hooks.uninstall()
            self.errors.uninstall_thread_hook()
            self.gc.uninstall()
            loop, self.loop = self.loop, None
            self.loop_probe.detach()
            if loop is not None:
                uninstrument_loop(loop)
            # The run-time state the server thread settled is the collector's again: the
            # agent's objects are collectable once dropped (agent/permanent.py).
            from introspect.agent import permanent

            permanent.release_runtime()

    def _start_detectors(self) -> None:
        """A detector that fails to start is counted and logged; the agent runs without it.
        A misconfiguration (a typo in INTROSPECT_LINTS) is the user's to hear about."""
        try:
            self.blocking = BlockingDetector(self).start()
        except UserError:
            raise
        except Exception as exc:
            self.collector_errors.record("blocking", exc)
            log.warning("introspect: blocking detection did not start: %r", exc)
        try:
            self.sampler = BusySampler(self)
        except Exception as exc:
            self.collector_errors.record("sampling", exc)
            log.warning("introspect: busy-time sampling did not start: %r", exc)

    def _stop_detectors(self) -> None:
        blocking, sampler = self.blocking, self.sampler
        self.blocking = self.sampler = None
        for name, part in (("exact", self._exact), ("sampling", sampler),
                           ("blocking", blocking)):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as exc:
                log.warning("introspect: stopping %s failed: %r", name, exc)

    def after_fork_in_child(self) -> None:
        """The child gets its own agent: new identity, new socket; nothing of the parent's
        server thread (it does not exist here) is touched except to forget it."""
        self.pid = os.getpid()
        self.started_at = time.time()
        self._lock = threading.RLock()
        self.process = ProcessCollector()
        self.agent_thread_ids = set()
        if self.server is not None:
            self.server.forget_after_fork()
            self.server = None
        if self.running:
            for name, part in (("blocking", self.blocking), ("sampling", self.sampler)):
                try:
                    if part is not None:
                        part.after_fork_in_child()
                except Exception as exc:  # never break the child
                    self.collector_errors.record(name, exc)
            from introspect.agent.server import AgentServer

            self.server = AgentServer(self)
            try:
                self.server.start()
            except Exception as exc:  # never break the child
                log.warning("introspect: agent could not start in forked child: %s",
                            escape_for_log(str(exc)))
                self.server = None

    # --- the observed loop -------------------------------------------------------------------
    def _loop_runs(self, loop: asyncio.AbstractEventLoop) -> None:
        """A loop starts running on the main thread (from its own `run_forever`, before its
        first iteration): one made before `start()` is attached here."""
        if loop is not self.loop:
            self.attach_loop(loop, starting=True)

    def attach_loop(self, loop: asyncio.AbstractEventLoop, starting: bool = False) -> None:
        """`starting`: called on the loop's thread as it starts running, before it has run
        anything (`_loop_runs`)."""
        with self._lock:
            current = self.loop
            if current is loop:
                return
            if current is not None and not current.is_closed() and current.is_running():
                return  # keep observing the loop that is running
            if current is not None:
                self.loop_probe.detach()
            self.loop = loop
            try:
                instrument_loop(loop, self.tasks, self.errors.loop_error)
                self.loop_probe.attach(loop, starting=starting)
                if loop.is_running():
                    loop.call_soon_threadsafe(self._adopt, loop)
            except Exception as exc:
                self.collector_errors.record("loop", exc)

    def _adopt(self, loop: asyncio.AbstractEventLoop, pending: list[Any] | None = None,
               start: int = 0) -> None:
        """Account the tasks that existed before the agent attached, ADOPT_CHUNK per loop
        iteration: 100k of them in one go held the app's loop for ~1 s."""
        try:
            if pending is None:
                pending = list(asyncio.all_tasks(loop))
            end = start + ADOPT_CHUNK
            self.tasks.adopt(loop, pending[start:end])
            if end < len(pending) and not loop.is_closed():
                loop.call_soon(self._adopt, loop, pending, end)
        except Exception as exc:
            self.collector_errors.record("tasks", exc)

    def call_on_loop(self, fn: Any, timeout: float = 2.0) -> Any:
        """Run `fn()` on the loop thread and wait; RuntimeError if the loop is not answering."""
        loop = self.loop
        if loop is None or loop.is_closed():
            raise RuntimeError("no event loop is observed")
        if self.loop_probe.thread_id == threading.get_ident():
            return fn()
        import concurrent.futures

        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RuntimeError(f"the event loop did not answer within {timeout:g}s") from None

    @property
    def exact(self) -> ExactMode:
        """Exact accounting: on demand, and needs only the observed loop. Made (and its module
        imported) at the first use, never at start: see `snapshot`."""
        exact = self._exact
        if exact is None:
            exact_mode = late_import("introspect.agent.exact").ExactMode  # not under _lock
            with self._lock:
                if self._exact is None:
                    self._exact = exact_mode(self)
                exact = self._exact
        return exact

    # --- reads -------------------------------------------------------------------------------
    def safe(self, collector: str, fn: Any, default: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            self.collector_errors.record(collector, exc)
            return default

    def snapshot(self, top_tasks: int = 20) -> Snapshot:
        # Imported at the first snapshot (a client's request, a call of the app's), never at
        # start: the snapshot structs, msgspec and the builders are ~3,000 GC-tracked objects
        # every full collection of the host would walk (issue 17).
        snapshot_builder = late_import("introspect.agent.snapshot_builder")
        started = time.perf_counter()
        snap = snapshot_builder.build(self, top_tasks)
        self.collect_seconds_last = time.perf_counter() - started
        return snap

    def watch(self, obj: Any, name: str | None = None) -> Any:
        if not (hasattr(obj, "qsize") or hasattr(obj, "__len__")):
            raise TypeError(f"introspect.watch: {type(obj).__name__} has neither qsize() nor "
                            "__len__()")
        if name is None:
            from introspect.agent.collectors.discovery_hooks import creation_site

            name = creation_site(obj, depth=3)[0]
        if not self.queues.rename(obj, name):
            self.queues.add(obj, name, name, watched=True)
        return obj

    def listen_addresses(self) -> list[str]:
        return list(self.server.addresses) if self.server is not None else []

    @staticmethod
    def node_basics() -> dict[str, Any]:
        return {"hostname": socket.gethostname(), "python": sys.version.split()[0],
                "executable": sys.executable}
