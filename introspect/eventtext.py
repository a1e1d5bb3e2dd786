"""Snapshot events as incident cards, for the CLI, the TUI and the demo report alike: a sentence
("loop blocked 1.21s by reporter (Task-529) in sync_db_query war_room.py:88 → time.sleep"),
then the evidence — local clock time and age, the facts, the stack innermost last with the
app's own frames told apart from stdlib and site-packages. Everything from the target is
escaped when the card is built, so both forms (`card_text`, plain; `card_rich`, Rich) are safe
to print."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from introspect.protocol.snapshot import (
    AnyEvent,
    BlockingEvent,
    ErrorReport,
    Frame,
    LintEvent,
    TaskRef,
)
from introspect.textfmt import age, duration, short_path
from introspect.textsafe import escape

if TYPE_CHECKING:
    from rich.text import Text

STUCK_SECONDS = 0.5  # the loop blocked this long right now reads STUCK (CLI and TUI header)
_LIBRARY_MARKS = ("/site-packages/", "/dist-packages/", "/introspect/agent/")


def kind_of(event: AnyEvent) -> str:
    return str(type(event).__struct_config__.tag)


def is_user_file(file: str) -> bool:
    """The app's own code, not stdlib, site-packages, the agent or a native call. Judged from
    the path alone (the client runs elsewhere than the target): `…/lib/python3.X/…` without
    site-packages is the stdlib."""
    if not file or file.startswith("<"):
        return False
    if any(mark in file for mark in _LIBRARY_MARKS):
        return False
    parts = file.split("/")
    return not any(p.startswith("python3") and i > 0 and parts[i - 1] in ("lib", "lib64")
                   for i, p in enumerate(parts))


def short_kind(kind: str) -> str:
    """`war_room.reporter` → `reporter`: the last part names the coroutine."""
    return kind.rsplit(".", 1)[-1] or kind


def task_text(task: TaskRef | str | None) -> str:
    """`reporter (Task-529)`; a bare name as given; "" for none. Escaped."""
    if task is None:
        return ""
    if isinstance(task, str):
        return escape(task, 60)
    kind = short_kind(task.kind)
    if not kind or kind == task.name:
        return escape(task.name, 60)
    return f"{escape(kind, 40)} ({escape(task.name, 40)})"


def place_text(location: str | None) -> str:
    """`/srv/app/war_room.py:88 sync_db_query` → `sync_db_query war_room.py:88`."""
    if not location:
        return ""
    where, _, function = location.partition(" ")
    where = escape(where.rsplit("/", 1)[-1], 80)
    return f"{escape(function, 60)} {where}" if function else where


def held_time(seconds: float) -> str:
    """How long the loop was held, to the hundredth between 1 and 10 s (`1.21s`): a headline
    figure compared with the last one."""
    return f"{seconds:.2f}s" if 1 <= seconds < 10 else duration(seconds)


@dataclass(frozen=True)
class StackLine:
    text: str
    user: bool  # the app's own code (highlighted); else stdlib/site-packages (dimmed)


@dataclass(frozen=True)
class EventCard:
    """One event, ready to print: every string already escaped."""

    time: float
    label: str  # "BLOCKED", "STILL BLOCKED", "LINT task_never_yields": what fired
    headline: str  # the sentence
    facts: list[tuple[str, str]] = field(default_factory=list)
    stack: list[StackLine] = field(default_factory=list)  # innermost last
    is_lint: bool = False


def _stack(frames: list[Frame]) -> list[StackLine]:
    out = []
    for f in frames:
        if f.file == "<call>":
            out.append(StackLine(f"→ {escape(f.function, 80)}  (the call it was in)", False))
            continue
        text = f"{escape(f.function, 60)}  {escape(short_path(f.file), 120)}:{f.line}"
        if f.code:
            text += f"  {escape(f.code.strip(), 80)}"
        out.append(StackLine(text, is_user_file(f.file)))
    return out


def _blocking_card(ev: BlockingEvent) -> EventCard:
    who = task_text(ev.task) or f"callback {place_text(ev.callback) or '?'}"
    headline = f"loop blocked {held_time(ev.duration)}"
    headline += " so far" if ev.ongoing else ""
    headline += f" by {who}"
    place = place_text(ev.location)
    if place:
        headline += f" in {place}"
    function = ev.location.partition(" ")[2] if ev.location else ""
    if ev.culprit and ev.culprit != function:
        headline += f" → {escape(ev.culprit, 60)}"
    facts = [("held", f"{duration(ev.duration)}{' (still blocked)' if ev.ongoing else ''}"
              f"{'' if ev.exact else ' at least (lag probe: no Python selector to time)'}")]
    if isinstance(ev.task, TaskRef):
        facts.append(("task", f"#{ev.task.id} {escape(ev.task.name, 60)}  kind "
                              f"{escape(ev.task.kind, 120)}"))
    if ev.location:
        facts.append(("where", escape(short_path(ev.location), 160)))
    if ev.loop_thread_cpu_share is not None:
        share = ev.loop_thread_cpu_share
        what = "waiting in a call (sleep, I/O, lock)" if share < 0.05 else "running Python"
        facts.append(("cpu", f"{share * 100:.0f}% of the time on CPU: {what}"))
    facts.append(("threshold", duration(ev.threshold)))
    return EventCard(time=ev.time, label="STILL BLOCKED" if ev.ongoing else "BLOCKED",
                     headline=headline, facts=facts, stack=_stack(ev.stack))


def _lint_card(ev: LintEvent) -> EventCard:
    headline = escape(ev.message, 300)
    facts = [("lint", escape(ev.lint, 60)), ("subject", escape(ev.subject, 160))]
    if ev.task is not None:
        facts.append(("task", task_text(ev.task)))
    if ev.duration is not None:
        facts.append(("duration", duration(ev.duration)))
    if ev.location:
        facts.append(("where", escape(short_path(ev.location), 160)))
    if ev.coroutine:
        facts.append(("coroutine", escape(ev.coroutine, 120)))
    if ev.type:
        facts.append(("exception", escape(ev.type, 80)))
    if ev.growth_from is not None:
        facts.append(("grew from", str(ev.growth_from)))
    return EventCard(time=ev.time, label=f"LINT {escape(ev.lint, 40)}", headline=headline,
                     facts=facts, is_lint=True)


def event_card(event: AnyEvent) -> EventCard:
    if isinstance(event, BlockingEvent):
        return _blocking_card(event)
    if isinstance(event, LintEvent):
        return _lint_card(event)
    return EventCard(time=event.time, label=escape(kind_of(event), 40).upper(),
                     headline=escape(kind_of(event), 40))


def clock_and_age(moment: float, now: float) -> str:
    """`14:02:07 (3.2s ago)`, local time: what the operator's watch says."""
    return f"{time.strftime('%H:%M:%S', time.localtime(moment))} ({age(now - moment)} ago)"


def card_text(card: EventCard, now: float, indent: str = "", max_frames: int | None = None
              ) -> str:
    """The plain form: label and sentence, when, facts, stack innermost last (its last
    `max_frames` frames, if given)."""
    lines = [f"{indent}{card.label}: {card.headline}",
             f"{indent}  at {clock_and_age(card.time, now)}"]
    lines.extend(f"{indent}  {label:<10}{value}" for label, value in card.facts)
    if card.stack:
        stack = card.stack if max_frames is None else card.stack[-max_frames:]
        hidden = len(card.stack) - len(stack)
        lines.append(f"{indent}  stack (innermost last; * = your code)"
                     + (f", {hidden} outer frames not shown:" if hidden else ":"))
        lines.extend(f"{indent}  {'*' if s.user else ' '} {s.text}" for s in stack)
    return "\n".join(lines)


def card_rich(card: EventCard, now: float) -> Text:
    """The Rich form for the TUI: the same lines, the app's frames bold, libraries dimmed."""
    from rich.text import Text

    out = Text()
    out.append(f"{card.label}", style="bold magenta" if card.is_lint else "bold red")
    out.append(": ")
    out.append(card.headline, style="bold")
    out.append(f"\n  at {clock_and_age(card.time, now)}")
    for label, value in card.facts:
        out.append(f"\n  {label:<10}", style="dim")
        out.append(value)
    if card.stack:
        out.append("\n\nstack, innermost last (your code in bold):", style="dim")
        for s in card.stack:
            out.append(f"\n  {s.text}", style="bold" if s.user else "dim")
    return out


@dataclass
class ErrorGroup:
    """Identical errors (same type, message and place) as one row."""

    latest: ErrorReport
    count: int
    first: float
    last: float


def group_errors(errors: list[ErrorReport]) -> list[ErrorGroup]:
    """Group by (type, message, where), newest group first: 16 identical TypeErrors from a
    crash loop are one row with a count, first and last seen."""
    groups: dict[tuple[str, str, str], ErrorGroup] = {}
    for err in sorted(errors, key=lambda e: e.time):
        key = (err.type, err.message, err.where)
        group = groups.get(key)
        if group is None:
            groups[key] = ErrorGroup(err, 1, err.time, err.time)
        else:
            group.latest, group.count, group.last = err, group.count + 1, err.time
    return sorted(groups.values(), key=lambda g: -g.last)
