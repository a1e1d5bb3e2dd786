"""The demo service: wires the stories together, runs the schedule, stops cleanly. The running
instance is `current()`; `console_locals()` is what a remote console should offer."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from typing import Any

from introspect.demo.blocking_calls import ReportsDatabase
from introspect.demo.bottleneck import MediaGateway
from introspect.demo.comments import CommentsService
from introspect.demo.cpu_hotspot import ChecksumHotspot
from introspect.demo.io_pool import IoPool
from introspect.demo.lock_contention import AccountsService
from introspect.demo.memory_churn import MemoryChurn
from introspect.demo.runtime import DemoClock, Narrator, StoryContext, TaskKeeper
from introspect.demo.schedule import Phase, run_schedule
from introspect.demo.unhandled_errors import UnhandledErrors

_current: DemoService | None = None


class DemoService:
    def __init__(self, speed: float = 1.0, quiet: bool = False) -> None:
        self.ctx = StoryContext(DemoClock(speed), Narrator(quiet), TaskKeeper())
        self.gateway = MediaGateway(self.ctx)
        self.comments = CommentsService(self.ctx)
        self.accounts = AccountsService(self.ctx)
        self.db = ReportsDatabase(self.ctx)
        self.memory = MemoryChurn(self.ctx)
        self.io = IoPool(self.ctx)
        self.cpu = ChecksumHotspot(self.ctx)
        self.errors = UnhandledErrors(self.ctx)
        self.loop: asyncio.AbstractEventLoop | None = None

    def phases(self) -> list[Phase]:
        stories = (self.comments, self.accounts, self.gateway, self.memory, self.db, self.io)
        phases = [phase for story in stories for phase in story.phases()]
        phases += self.errors.phases()
        return sorted(phases, key=lambda phase: phase.at)

    def make_current(self) -> None:
        global _current
        self.loop = asyncio.get_running_loop()
        _current = self

    def start(self) -> None:
        """Start every story and the schedule (the schedule's first phase starts comments)."""
        self.make_current()
        self.gateway.start()
        self.accounts.start()
        self.db.start()
        self.memory.start()
        self.io.start()
        self.cpu.start()
        self.comments.start_feed()
        self.ctx.spawn(run_schedule(self.ctx, self.phases()), "demo-schedule")

    async def stop(self) -> None:
        global _current
        await self.ctx.keeper.cancel_all()
        self.io.shutdown()
        self.errors.join_threads()
        if _current is self:
            _current = None

    def restart_comments_workers(self) -> str:
        """Bring the comments workers back; safe to call from any thread."""
        loop = self.loop
        if loop is None:
            raise RuntimeError("the demo service has not started")
        try:
            in_loop_thread = asyncio.get_running_loop() is loop
        except RuntimeError:
            in_loop_thread = False
        if in_loop_thread:
            return self.comments.restart_workers()
        future = asyncio.run_coroutine_threadsafe(_call(self.comments.restart_workers), loop)
        return future.result(timeout=5)


async def _call(function: Any) -> Any:
    return function()


def current() -> DemoService:
    """The running demo service (the console's `state`)."""
    if _current is None:
        raise RuntimeError("the demo service is not running in this process")
    return _current


def restart_comments_workers() -> str:
    """Console helper: drop the poison message and restart the comments workers."""
    return current().restart_comments_workers()


def console_locals() -> dict[str, Any]:
    """Names a console inside the demo should offer."""
    service = current()
    return {
        "state": service,
        "service": service,
        "restart_comments_workers": restart_comments_workers,
    }


async def run_demo(
    duration: float | None = None,
    speed: float = 1.0,
    quiet: bool = False,
    *,
    handle_signals: bool = True,
) -> None:
    """Run the demo until `duration` real seconds pass, SIGTERM/SIGINT, or cancellation."""
    loop = asyncio.get_running_loop()
    service = DemoService(speed=speed, quiet=quiet)
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    if handle_signals and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
    service.start()
    # Wait in this task itself (no helper task, so no extra task kind in the census).
    timer = loop.call_later(duration, stop.set) if duration is not None else None
    try:
        await stop.wait()
    finally:
        if timer is not None:
            timer.cancel()
        for signum in installed:
            loop.remove_signal_handler(signum)
        await service.stop()
