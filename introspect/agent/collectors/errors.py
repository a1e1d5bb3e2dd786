"""Crash reports: tasks that ended with an exception (retrieved or not), unhandled thread
exceptions (`threading.excepthook`, chained) and loop errors (the loop's exception handler,
chained — the app's own handler keeps running and keeps being what the loop reports)."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import traceback
import weakref
from typing import Any

MAX_TYPES = 100  # distinct exception types exported by name; the rest count as "other"
TRACEBACK_BUDGET_PER_SECOND = 50  # formatted tracebacks per second; beyond that, counted only


class ErrorCollector:
    def __init__(self, maxlen: int, max_age: float) -> None:
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=maxlen)
        self.max_age = max_age
        self.total = 0
        self.by_source_type: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._budget_window = 0
        self._budget_used = 0
        self._previous_excepthook: Any = None
        self._by_exc_id: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()

    # --- recording -------------------------------------------------------------------------
    def record(self, source: str, exc: BaseException | None, *, message: str | None = None,
               task: str | None = None, kind: str | None = None, thread: str | None = None,
               task_ref: weakref.ref | None = None) -> dict[str, Any]:
        type_name = type(exc).__name__ if exc is not None else "Error"
        text = message if message is not None else _safe_str(exc)
        report: dict[str, Any] = {
            "time": time.time(), "source": source, "type": type_name, "message": text[:2000],
            "where": _where(exc), "task": task, "kind": kind, "thread": thread,
            "retrieved": None, "traceback": self._traceback_text(exc),
        }
        if task_ref is not None:
            report["_task_ref"] = task_ref
        with self._lock:
            self.total += 1
            known = {t for (_s, t) in self.by_source_type}
            label = type_name if type_name in known or len(known) < MAX_TYPES else "other"
            key = (source, label)
            self.by_source_type[key] = self.by_source_type.get(key, 0) + 1
            self._recent.append(report)
            if exc is not None:
                self._by_exc_id[id(exc)] = report
                while len(self._by_exc_id) > 256:
                    self._by_exc_id.popitem(last=False)
        return report

    def _traceback_text(self, exc: BaseException | None) -> str:
        if exc is None or exc.__traceback__ is None:
            return ""
        second = int(time.monotonic())
        if second != self._budget_window:
            self._budget_window, self._budget_used = second, 0
        if self._budget_used >= TRACEBACK_BUDGET_PER_SECOND:
            return ""
        self._budget_used += 1
        try:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=40)
            return "".join(lines)[-8000:]
        except Exception:
            return ""

    def task_crashed(self, task: asyncio.Task, meta: Any, exc: BaseException) -> None:
        self.record("task", exc, task=f"{task.get_name()} #{meta.seq}", kind=meta.kind,
                    task_ref=weakref.ref(task))

    # --- hooks -------------------------------------------------------------------------------
    def install_thread_hook(self) -> None:
        if self._previous_excepthook is not None:
            return
        previous = threading.excepthook
        self._previous_excepthook = previous

        def introspect_excepthook(args: threading.ExceptHookArgs) -> None:
            try:
                if not issubclass(args.exc_type, SystemExit):
                    name = args.thread.name if args.thread is not None else None
                    self.record("thread", args.exc_value, thread=name)
            except Exception:
                pass
            previous(args)

        introspect_excepthook.previous = previous  # type: ignore[attr-defined]
        threading.excepthook = introspect_excepthook

    def uninstall_thread_hook(self) -> None:
        previous, self._previous_excepthook = self._previous_excepthook, None
        if previous is not None and getattr(threading.excepthook, "previous", None) is previous:
            threading.excepthook = previous

    def loop_error(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = context.get("message", "")
        fut = context.get("future") or context.get("task")
        if exc is not None and isinstance(fut, asyncio.Future):
            # "Task exception was never retrieved": already a crash report; mark it.
            with self._lock:
                report = self._by_exc_id.get(id(exc))
            if report is not None:
                report["retrieved"] = False
                report.pop("_task_ref", None)
                return
        source = "callback" if context.get("handle") is not None else "loop"
        text = f"{message}: {_safe_str(exc)}" if exc is not None and message else (
            message or _safe_str(exc))
        self.record(source, exc, message=text)

    # --- reads -------------------------------------------------------------------------------
    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        cutoff = time.time() - self.max_age
        with self._lock:
            items = [r for r in self._recent if r["time"] >= cutoff][-limit:]
        out = []
        for report in items:
            row = {k: v for k, v in report.items() if not k.startswith("_")}
            ref = report.get("_task_ref")
            if ref is not None and row["retrieved"] is None:
                task = ref()
                if task is not None:
                    row["retrieved"] = not getattr(task, "_log_traceback", False)
                else:
                    row["retrieved"] = True  # gone without asyncio's "never retrieved" report
            out.append(row)
        return out

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.by_source_type)


def _safe_str(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def _where(exc: BaseException | None) -> str:
    tb = exc.__traceback__ if exc is not None else None
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    code = last.tb_frame.f_code
    return f"{code.co_filename}:{last.tb_lineno} {code.co_name}"
