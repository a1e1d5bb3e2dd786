"""Lints fed by events: blocking calls (from the watchdog), warnings, crash reports."""

from __future__ import annotations

import collections
import re
import warnings
from typing import TYPE_CHECKING, Any

from introspect.agent.lints.base import Finding, Lint

if TYPE_CHECKING:
    from introspect.protocol.snapshot import BlockingEvent, TaskRef

_NEVER_AWAITED = re.compile(r"coroutine '([^']+)' was never awaited")


def _task_label(task: TaskRef | None) -> str:
    if task is None:
        return ""
    return f"task {task.name} #{task.id} ({task.kind})"


class LoopBlocked(Lint):
    name = "loop_blocked"
    summary = "the event loop was held past the block threshold (any step or callback)"
    repeat_after = 60.0  # per culprit location

    def feed(self, **facts: Any) -> list[Finding]:
        event: BlockingEvent = facts["event"]
        who = _task_label(event.task) or f"callback {event.callback or '?'}"
        return [Finding(subject=event.location or who,
                        message=f"loop blocked {event.duration:.3f}s by {who} at "
                                f"{event.location} ({event.culprit or '?'})",
                        details={"duration": event.duration, "location": event.location,
                                 "task": event.task})]


class TaskNeverYields(Lint):
    name = "task_never_yields"
    summary = "one step of a task ran longer than the block threshold without an await"
    repeat_after = 60.0  # per task kind

    def feed(self, **facts: Any) -> list[Finding]:
        event: BlockingEvent = facts["event"]
        task = event.task
        if task is None or not event.single_step:
            return []
        return [Finding(subject=task.kind,
                        message=f"{_task_label(task)} ran {event.duration:.3f}s in one step "
                                f"without yielding, at {event.location}",
                        details={"duration": event.duration, "task": task,
                                 "location": event.location})]


class CoroutineNeverAwaited(Lint):
    """Chains `warnings.showwarning` (the app's or the default one keeps running unchanged) to
    see asyncio's `RuntimeWarning: coroutine '...' was never awaited` with its location. A
    warning the app's filters ignore is never shown, so never seen here either."""

    name = "coroutine_never_awaited"
    summary = "a coroutine object was created and dropped without being awaited"
    repeat_after = 300.0  # per coroutine and location

    def __init__(self) -> None:
        super().__init__()
        self._previous: Any = None
        self._hook: Any = None
        self._registry: Any = None

    def install(self, agent: Any, registry: Any) -> None:
        self._registry = registry
        previous = warnings.showwarning
        lint = self

        def introspect_showwarning(message, category, filename, lineno, file=None, line=None):
            try:
                lint._seen(message, category, filename, lineno)
            except Exception:
                pass
            return previous(message, category, filename, lineno, file, line)

        introspect_showwarning.previous = previous  # type: ignore[attr-defined]
        self._previous, self._hook = previous, introspect_showwarning
        warnings.showwarning = introspect_showwarning

    def uninstall(self) -> None:
        if self._hook is not None and warnings.showwarning is self._hook:
            warnings.showwarning = self._previous
        self._hook = None

    def _seen(self, message: Any, category: type, filename: str, lineno: int) -> None:
        if not (isinstance(category, type) and issubclass(category, RuntimeWarning)):
            return
        match = _NEVER_AWAITED.search(str(message))
        registry = self._registry
        if match is None or registry is None or not self.enabled:
            return
        where = f"{filename}:{lineno}"
        registry.emit(self, Finding(
            subject=f"{match.group(1)} {where}",
            message=f"coroutine {match.group(1)} was never awaited (warning at {where})",
            details={"coroutine": match.group(1), "location": where}))


class ExceptionNeverRetrieved(Lint):
    """Crash reports the loop later called "Task exception was never retrieved"."""

    name = "exception_never_retrieved"
    summary = "a task ended with an exception that nobody retrieved"
    periodic = True
    repeat_after = 0.0  # each crash report once (deduplicated below)

    def __init__(self) -> None:
        super().__init__()
        self._reported: collections.deque[tuple[float, str]] = collections.deque(maxlen=1000)

    def check(self, agent: Any, now: float) -> list[Finding]:
        findings = []
        for report in agent.errors.recent(200):
            if report.get("retrieved") is not False or report.get("source") != "task":
                continue
            key = (report["time"], report.get("task") or "")
            if key in self._reported:
                continue
            self._reported.append(key)
            findings.append(Finding(
                subject=f"{report.get('task')} {report['time']}",
                message=f"{report['type']} in {report.get('task')} ({report.get('kind')}) "
                        f"was never retrieved, raised at {report.get('where')}",
                details={"task": report.get("task"), "type": report["type"],
                         "location": report.get("where")}))
        return findings
