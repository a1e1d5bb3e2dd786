"""5 Queues: every queue ranked by backlog; trend sparkline; near-capacity and growing queues
highlighted (the "mailbox growing" story)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from introspect.textfmt import short_path, sparkline
from introspect.tui.messages import OpenQueue
from introspect.tui.state.model import ObserverState, queue_key
from introspect.tui.views.base import View
from introspect.tui.widgets.text import safe, tail, theme_color

NEAR_CAPACITY = 0.8


class QueuesView(View):
    """Enter opens the queue's page (owners, trend)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._keys: list[str] = []  # row index -> queue key, for Enter

    def compose(self) -> ComposeResult:
        yield Static(id="queue-status", classes="status")
        table: DataTable = DataTable(id="queue-table", cursor_type="row")
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#queue-table", DataTable)
        for key, label in (("name", "QUEUE"), ("length", "LEN"), ("capacity", "CAP"),
                           ("fill", "FILL"), ("getters", "GET"), ("putters", "PUT"),
                           ("trend", "TREND"), ("consumers", "CONSUMED BY"),
                           ("type", "TYPE")):
            table.add_column(label, key=key)

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        error, warning = theme_color(self, "error"), theme_color(self, "warning")
        table = self.query_one("#queue-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        rows = sorted(snap.queues, key=lambda q: (-q.length, q.name))
        saturated = growing = 0
        self._keys = [queue_key(q) for q in rows]
        for q in rows:
            fill = q.length / q.capacity if q.capacity else 0.0
            style = ""
            if q.capacity and fill >= NEAR_CAPACITY:
                style, saturated = f"bold {error}", saturated + 1
            elif model.queue_growing(q):
                style, growing = warning, growing + 1
            site = short_path(q.name or q.created_at)
            # Bound name first; the site's file:line after it (what the metrics label says).
            name = safe(f"{q.bound_to}  {site.rsplit('/', 1)[-1]}", 48) if q.bound_to \
                else tail(site, 40)
            name.stylize(style)
            table.add_row(name, Text(str(q.length), style=style),
                          str(q.capacity) if q.capacity else "∞",
                          Text(f"{fill:.0%}" if q.capacity else "-", style=style),
                          str(q.getters), Text(str(q.putters), style=style if q.putters else ""),
                          sparkline(model.queue_trends.get(queue_key(q), ())),
                          tail(", ".join(k.rsplit(".", 1)[-1] for k in q.consumers) or "-",
                               24),
                          safe(q.type, 16))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        status = Text(f"{len(rows)} queues, largest backlog first")
        if saturated:
            status.append(f"  {saturated} near capacity", style=f"bold {error}")
        if growing:
            status.append(f"  {growing} growing", style=warning)
        self.query_one("#queue-status", Static).update(status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self._keys):
            self.post_message(OpenQueue(self._keys[event.cursor_row]))
