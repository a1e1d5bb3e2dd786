"""9 Metrics: the app's own metrics, read from the agent's Prometheus endpoint."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from introspect.textfmt import sparkline
from introspect.tui.state import app_metrics
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.text import safe

NO_ENDPOINT_HINT = (
    "This agent serves no Prometheus endpoint, so the app's own metrics cannot be read.\n"
    "Start the target with INTROSPECT_METRICS_PORT=9464 (or `introspect run --metrics-port "
    "...`) to see them here.")


class MetricsView(View):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history = app_metrics.MetricHistory()
        self.url: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="metrics-status", classes="status")
        table: DataTable = DataTable(id="metrics-table", cursor_type="row")
        yield table

    def on_mount(self) -> None:
        self.query_one("#metrics-table", DataTable).add_columns(
            "METRIC", "LABELS", "VALUE", "TREND", "TYPE")

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        advertised = snap.agent.metrics if snap is not None and snap.agent else None
        if not advertised:
            self.url = None
            self.query_one("#metrics-status", Static).update(Text(NO_ENDPOINT_HINT))
            return
        url = app_metrics.metrics_url(advertised)
        if url != self.url:
            self.url, self.history = url, app_metrics.MetricHistory()
        if self.live:
            self.fetch(url)
        else:
            self.query_one("#metrics-status", Static).update(Text(
                f"a recording does not hold the app's metrics (they were at {url})"))

    @work(exclusive=True, group="app-metrics", exit_on_error=False)
    async def fetch(self, url: str) -> None:
        status = self.query_one("#metrics-status", Static)
        try:
            values = await asyncio.to_thread(app_metrics.fetch, url)
        except Exception as exc:  # any network/parse failure is shown, never raised
            if not self.is_attached:
                return
            status.update(Text(f"cannot read {url}: {exc}"))
            return
        self.history.add(values)
        if not self.is_attached:
            return
        table = self.query_one("#metrics-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for v in values:
            table.add_row(safe(v.name, 48), safe(v.labels, 48), f"{v.value:.6g}",
                          sparkline(self.history.trend(v), 16), v.type)
        if values:
            table.move_cursor(row=min(cursor, len(values) - 1))
        status.update(Text(f"{len(values)} series from {url}"))
