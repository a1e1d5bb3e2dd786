"""8 Errors & events: unhandled exceptions (crash reports) and events (blocking calls, crash
loops, warnings); Enter shows the full traceback or event."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from introspect.eventtext import (
    ErrorGroup,
    card_rich,
    clock_and_age,
    event_card,
    group_errors,
)
from introspect.protocol.snapshot import AnyEvent, ErrorReport
from introspect.textfmt import age
from introspect.textsafe import escape
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.dialogs import TextScreen
from introspect.tui.widgets.text import location, safe


def error_page(err: ErrorReport) -> Text:
    out = Text()
    out.append_text(safe(f"{err.type}: {err.message}", 2000, style="bold"))
    out.append(f"\nsource {err.source}")
    for label, value in (("where", err.where), ("task", err.task), ("kind", err.kind),
                         ("thread", err.thread)):
        if value:
            out.append(f"\n{label:<7}")
            out.append_text(safe(value, 300))
    if err.retrieved is False:
        out.append("\nnever retrieved: nobody awaited this task's result")
    out.append("\n\n")
    # Tracebacks are multi-line: escape each line, keep the line breaks.
    lines = (err.traceback or "(no traceback recorded)").splitlines()[:400]
    out.append("\n".join(escape(line, 500) for line in lines))
    return out


def group_page(group: ErrorGroup, now: float) -> Text:
    out = Text()
    if group.count > 1:
        out.append(f"{group.count} times, first {clock_and_age(group.first, now)}, last "
                   f"{clock_and_age(group.last, now)}\n", style="bold")
    else:
        out.append(f"at {clock_and_age(group.last, now)}\n", style="bold")
    out.append_text(error_page(group.latest))
    return out


class ErrorsView(View):
    """Errors grouped by type, message and place (a crash loop is one row with a count);
    events as incident cards, one line each, the whole card on Enter."""

    def compose(self) -> ComposeResult:
        yield Static(id="errors-status", classes="status")
        errors: DataTable = DataTable(id="error-table", cursor_type="row")
        yield errors
        yield Static(Text("EVENTS", style="bold"), classes="status")
        events: DataTable = DataTable(id="event-table", cursor_type="row")
        yield events

    def on_mount(self) -> None:
        self.fitted_to = 0
        self._set_error_columns()
        self.query_one("#event-table", DataTable).add_columns("AGO", "WHAT", "DETAIL")
        self.groups: list[ErrorGroup] = []
        self.events: list[AnyEvent] = []
        self.now = 0.0

    def _set_error_columns(self) -> None:
        """EXCEPTION and WHERE share the width (WHERE keeps `file:line`, cut from the left);
        TASK/THREAD only where there is room for it."""
        width = self.fitted_to = self.size.width or 160
        room = width - 32  # COUNT, LAST, FIRST and the cells' padding
        self.with_task = room >= 90
        if self.with_task:
            room -= 26
        self.exception_width = max(20, room * 11 // 20)
        self.where_width = max(16, room - self.exception_width)
        table = self.query_one("#error-table", DataTable)
        table.clear(columns=True)
        table.add_columns("COUNT", "LAST", "FIRST", "EXCEPTION", "WHERE",
                          *(["TASK/THREAD"] if self.with_task else []))

    def on_resize(self) -> None:
        if self.size.width != self.fitted_to and self.is_mounted:
            self._set_error_columns()
            self.show(self.observer.model)

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        now = self.now = snap.time  # the snapshot's own clock: a replay shows what live showed
        self.groups = group_errors(snap.errors.recent)
        table = self.query_one("#error-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for i, g in enumerate(self.groups):
            e = g.latest
            cells = [f"{g.count}×", age(now - g.last), age(now - g.first),
                     safe(f"{e.type}: {e.message}", self.exception_width),
                     location(e.where, self.where_width)]
            if self.with_task:
                cells.append(safe(e.task or e.thread or e.source, 24))
            table.add_row(*cells, key=str(i))
        if self.groups:
            table.move_cursor(row=min(cursor, len(self.groups) - 1))
        status = Text(f"{snap.errors.total} unhandled exceptions")
        if snap.errors.recent:
            status.append(f", {len(self.groups)} distinct among the last "
                          f"{len(snap.errors.recent)}")
        status.append("  Enter: full traceback", style="dim")
        self.query_one("#errors-status", Static).update(status)
        self.events = sorted(snap.events, key=lambda e: -e.time)
        events = self.query_one("#event-table", DataTable)
        events.clear()
        for i, ev in enumerate(self.events):
            card = event_card(ev)
            events.add_row(age(now - ev.time),
                           Text(card.label, style="magenta" if card.is_lint else "bold red",
                                no_wrap=True),
                           Text(card.headline, no_wrap=True, overflow="ellipsis"), key=str(i))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(event.row_key.value or 0)
        if event.data_table.id == "error-table" and index < len(self.groups):
            group = self.groups[index]
            self.app.push_screen(TextScreen(f"{escape(group.latest.type, 60)}",
                                            group_page(group, self.now),
                                            screen_id="traceback"))
        elif event.data_table.id == "event-table" and index < len(self.events):
            card = event_card(self.events[index])
            self.app.push_screen(TextScreen(f"event {card.label}", card_rich(card, self.now),
                                            screen_id="event-page"))
