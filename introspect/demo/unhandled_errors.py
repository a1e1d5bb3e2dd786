"""Unhandled exceptions from the three places a service loses them (seed 002: find the crash):
a plain thread (reported by `threading.excepthook`), a loop callback (reported by the loop's
exception handler) and a task whose exception nobody retrieves ("Task exception was never
retrieved" when it is garbage-collected). Each error type says it is intended, so tests and
readers can tell these tracebacks from real ones.
"""

from __future__ import annotations

import asyncio
import threading

from introspect.demo.runtime import StoryContext
from introspect.demo.schedule import Phase

STORY = "errors"
ERRORS_AT = 52.0
THREAD_NAME = "demo-report-exporter"
TASK_NAME = "audit-fire-and-forget"


class DemoThreadError(RuntimeError):
    """Intended: raised in a plain thread nobody joins for errors."""


class DemoCallbackError(RuntimeError):
    """Intended: raised in a loop callback."""


class DemoUnretrievedError(RuntimeError):
    """Intended: raised in a task whose exception is never retrieved."""


def export_report_in_thread() -> None:
    raise DemoThreadError("report exporter lost its connection (intended demo failure)")


def refresh_config_callback() -> None:
    raise DemoCallbackError("config refresh callback failed (intended demo failure)")


async def fire_and_forget_audit() -> None:
    await asyncio.sleep(0)
    raise DemoUnretrievedError("audit write failed and nobody awaited it (intended demo failure)")


class UnhandledErrors:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        self.threads: list[threading.Thread] = []

    def trigger(self) -> None:
        thread = threading.Thread(target=export_report_in_thread, name=THREAD_NAME)
        thread.start()
        # The thread dies at once; waiting for its report (a few ms) keeps it from interleaving
        # with the demo's own log lines on stderr.
        thread.join(timeout=0.5)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        loop = asyncio.get_running_loop()
        loop.call_soon(refresh_config_callback)
        # Deliberately unreferenced and never awaited: the mistake this story shows.
        loop.create_task(fire_and_forget_audit(), name=TASK_NAME)  # noqa: RUF006

    def join_threads(self) -> None:
        for thread in self.threads:
            thread.join()

    def phases(self) -> list[Phase]:
        return [
            Phase(
                ERRORS_AT,
                STORY,
                "unhandled exceptions in a thread, a loop callback and a never-awaited task",
                self.trigger,
            )
        ]
