"""Snapshot events in words, for the CLI and the TUI alike: a one-line summary and the labelled
fields of a full page. Unsafe text (names, messages, paths from the app) is not escaped here:
callers escape for their medium (`textsafe.escape`, `tui.widgets.text.safe`)."""

from __future__ import annotations

import msgspec

from introspect.protocol.snapshot import AnyEvent, BlockingEvent, Frame, LintEvent, TaskRef


def kind_of(event: AnyEvent) -> str:
    return str(type(event).__struct_config__.tag)


def task_text(task: TaskRef | str | None) -> str:
    if task is None:
        return ""
    if isinstance(task, str):
        return f"task {task}"
    return f"task {task.name} #{task.id} ({task.kind})"


def event_summary(event: AnyEvent) -> str:
    """One line: who, how long, where."""
    if isinstance(event, BlockingEvent):
        who = task_text(event.task) or f"callback {event.callback or '?'}"
        still = " (still blocked)" if event.ongoing else ""
        where = f" at {event.location}" if event.location else ""
        culprit = f" in {event.culprit}" if event.culprit else ""
        return f"{who} held the loop {event.duration:.3f}s{still}{where}{culprit}"
    if isinstance(event, LintEvent):
        return f"{event.lint}: {event.message}"
    return kind_of(event)


def _value_text(value: object) -> str:
    if isinstance(value, TaskRef):
        return task_text(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(f, Frame) for f in value):
        return "\n".join(f"{f.file}:{f.line} {f.function}" for f in value) or "(none)"
    return str(value)


def event_fields(event: AnyEvent) -> list[tuple[str, str]]:
    """(label, text) for every field that has a value, in the event's own order; the stack
    (outermost first) one frame per line."""
    out = [("kind", kind_of(event))]
    for field in msgspec.structs.fields(event):
        value = getattr(event, field.name)
        if value is None:
            continue
        out.append((field.encode_name, _value_text(value)))
    return out
