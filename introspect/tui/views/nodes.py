"""0 Nodes: every agent known (local `ps` and the targets file); Enter switches to it."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from introspect.textfmt import age
from introspect.tui.messages import WatchTarget
from introspect.tui.state.model import ObserverState
from introspect.tui.state.nodes import NodeEntry, list_nodes, targets_file_hint
from introspect.tui.views.base import View
from introspect.tui.widgets.text import safe


class NodesView(View):
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.nodes: list[NodeEntry] = []

    def compose(self) -> ComposeResult:
        yield Static(id="nodes-status", classes="status")
        table: DataTable = DataTable(id="nodes-table", cursor_type="row")
        yield table

    def on_mount(self) -> None:
        self.query_one("#nodes-table", DataTable).add_columns(
            "TARGET", "FROM", "UPTIME", "COMMAND / ADDRESS")
        self.action_reload()

    def show(self, model: ObserverState) -> None:
        pass  # the list changes rarely: reloaded on demand (r) and when the tab opens

    def action_reload(self) -> None:
        self.nodes, problem = list_nodes()
        table = self.query_one("#nodes-table", DataTable)
        table.clear()
        now = time.time()
        current = self.observer.target_label
        for i, n in enumerate(self.nodes):
            marker = "▶ " if n.target == current else "  "
            uptime = age(now - n.started_at) if n.started_at else ""
            table.add_row(safe(marker + n.target, 30), n.source, uptime,
                          safe(n.description, 100), key=str(i))
        status = Text(f"{len(self.nodes)} nodes (local agents and {targets_file_hint()})  "
                      "Enter: switch to the node")
        if problem:
            status.append("\n")
            status.append_text(safe(problem, 200))
        if not self.nodes:
            status.append("\nno agent found: start one with `introspect run -- python app.py`")
        self.query_one("#nodes-status", Static).update(status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(event.row_key.value or 0)
        if index < len(self.nodes):
            self.post_message(WatchTarget(self.nodes[index].target))
