"""8 Errors & events: unhandled exceptions (crash reports) and events (blocking calls, crash
loops, warnings); Enter shows the full traceback or event."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from introspect.eventtext import event_fields, event_summary, kind_of
from introspect.protocol.snapshot import AnyEvent, ErrorReport
from introspect.textfmt import age, short_path
from introspect.textsafe import escape
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.dialogs import TextScreen
from introspect.tui.widgets.text import safe


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


class ErrorsView(View):
    def compose(self) -> ComposeResult:
        yield Static(id="errors-status", classes="status")
        errors: DataTable = DataTable(id="error-table", cursor_type="row")
        yield errors
        yield Static(Text("EVENTS", style="bold"), classes="status")
        events: DataTable = DataTable(id="event-table", cursor_type="row")
        yield events

    def on_mount(self) -> None:
        self.query_one("#error-table", DataTable).add_columns(
            "AGO", "SOURCE", "EXCEPTION", "WHERE", "TASK/THREAD")
        self.query_one("#event-table", DataTable).add_columns("AGO", "KIND", "DETAIL")
        self.errors: list[ErrorReport] = []
        self.events: list[AnyEvent] = []

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        now = snap.time  # ages from the snapshot's own clock: a replay shows what live showed
        self.errors = sorted(snap.errors.recent, key=lambda e: -e.time)
        table = self.query_one("#error-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for i, e in enumerate(self.errors):
            table.add_row(age(now - e.time), e.source, safe(f"{e.type}: {e.message}", 60),
                          safe(short_path(e.where), 40), safe(e.task or e.thread or "", 30),
                          key=str(i))
        if self.errors:
            table.move_cursor(row=min(cursor, len(self.errors) - 1))
        by_type = ", ".join(f"{k} {v}" for k, v in
                            sorted(snap.errors.by_type.items(), key=lambda kv: -kv[1])[:5])
        status = Text(f"{snap.errors.total} unhandled exceptions")
        if by_type:
            status.append("  ")
            status.append_text(safe(by_type, 80))
        status.append("  Enter: full traceback", style="dim")
        self.query_one("#errors-status", Static).update(status)
        self.events = sorted(snap.events, key=lambda e: -e.time)
        events = self.query_one("#event-table", DataTable)
        events.clear()
        for i, ev in enumerate(self.events):
            events.add_row(age(now - ev.time), safe(kind_of(ev), 20),
                           safe(event_summary(ev), 100),
                           key=str(i))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(event.row_key.value or 0)
        if event.data_table.id == "error-table" and index < len(self.errors):
            err = self.errors[index]
            self.app.push_screen(TextScreen(f"{escape(err.type, 60)}", error_page(err),
                                            screen_id="traceback"))
        elif event.data_table.id == "event-table" and index < len(self.events):
            ev = self.events[index]
            body = Text()
            for key, value in event_fields(ev):
                body.append(f"{escape(key, 40)}: ", style="bold")
                lines = value.splitlines() or [""]
                body.append("\n".join(escape(line, 500) for line in lines[:200]) + "\n")
            self.app.push_screen(TextScreen(f"event {escape(kind_of(ev), 40)}", body,
                                            screen_id="event-page"))
