"""The exact accounting page (issue 6): every step of every task timed for a bounded time,
polled about once a second while the session runs. Per kind: steps, busy time and scheduling
delay with p99 bounds from the log2 histograms; then the busiest tasks. Closing the page does
not stop the session: the agent ends it at its deadline.

The report is typed (`ExactSessionReport`, docs/blocking.md); every string from the target is
escaped."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Static

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.textfmt import duration, histogram_quantile
from introspect.tui.views.base import source_of, update_line
from introspect.tui.widgets.table import RowTable
from introspect.tui.widgets.text import safe, tail

POLL_SECONDS = 1.0
MAX_TASKS = 200  # the busiest tasks asked for and listed
KIND_COLUMNS = [("steps", "STEPS"), ("busy", "BUSY"), ("busy_step", "BUSY/STEP"),
                ("busy_p99", "BUSY P99 ≤"), ("delay_step", "DELAY/STEP"),
                ("delay_p99", "DELAY P99 ≤"), ("kind", "KIND")]
TASK_COLUMNS = [("id", "ID"), ("steps", "STEPS"), ("busy", "BUSY"), ("busy_step", "BUSY/STEP"),
                ("delay_max", "MAX DELAY"), ("name", "NAME"), ("kind", "KIND")]
HINT = "Esc: close (a running session goes on in the target until its deadline)   r: refresh"


def progress_line(report: m.ExactSessionReport) -> Text:
    """`running: 12.0s of 30s (c), 48,211 task steps, 1,020 other callbacks (3.1ms busy)`."""
    steps = sum(k.steps for k in report.kinds.values())
    callbacks = report.callbacks
    running, seconds, elapsed = report.running, report.seconds, report.elapsed
    line = Text()
    line.append("running" if running else "finished", style="bold")
    line.append(f": {duration(min(elapsed, seconds) if running else elapsed)} of "
                f"{seconds:g}s")
    if seconds > 0:
        line.append(f" ({min(100.0, elapsed / seconds * 100):.0f}%)")
    line.append(", implementation ")
    line.append_text(safe(report.implementation, 20))
    line.append(f", {steps:,.0f} task steps, {callbacks.steps:,.0f} other "
                f"callbacks ({duration(callbacks.busy_seconds)} busy)")
    return line


def kind_rows(report: m.ExactSessionReport) -> list[tuple[str, Sequence[Text | str]]]:
    """One row per task kind, the busiest first (the CLI's `introspect exact` columns)."""
    items = sorted(report.kinds.items(), key=lambda item: -item[1].busy_seconds)
    rows = []
    for name, k in items:
        per = max(1, k.steps)
        rows.append((name, (
            f"{k.steps:,.0f}", duration(k.busy_seconds), duration(k.busy_seconds / per),
            duration(histogram_quantile(k.busy_histogram, 0.99)),
            duration(k.delay_seconds_total / per),
            duration(histogram_quantile(k.delay_histogram, 0.99)),
            tail(name, 60))))
    return rows


def task_rows(report: m.ExactSessionReport, limit: int = MAX_TASKS
              ) -> list[tuple[str, Sequence[Text | str]]]:
    """The busiest tasks, in the report's order (busiest first)."""
    rows = []
    for index, t in enumerate(report.tasks[:limit]):
        task_id = safe(t.id, 20)
        rows.append((f"{index}:{task_id.plain}", (
            task_id, f"{t.steps:,.0f}", duration(t.busy_seconds),
            duration(t.busy_seconds / max(1, t.steps)), duration(t.delay_max_seconds),
            safe(t.name, 40), tail(t.kind, 50))))
    return rows


class ExactScreen(ModalScreen[None]):
    """The latest exact accounting report, polled until it is finished.

    `seconds` is the session just started from the TUI (None: only show the latest report,
    whatever started it). `report` and `poll=False` show a fixed report (tests)."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close", show=False),
                Binding("r", "refresh_report", "Refresh")]

    def __init__(self, seconds: float | None = None, *,
                 report: m.ExactSessionReport | None = None,
                 poll: bool = True) -> None:
        super().__init__(id="exact")
        self.seconds = seconds
        self.report = report
        self.poll = poll
        self.error: str | None = None
        self.polls = 0  # answers received (tests wait on it)
        self._timer: Timer | None = None
        self._asking = False

    def compose(self) -> ComposeResult:
        title = "exact accounting" + (f" for {self.seconds:g}s" if self.seconds else "")
        with Vertical(classes="page"):
            yield Static(Text(title, style="bold"), classes="page-title")
            yield Static(Text("asking the target for its report…"), id="exact-progress",
                         classes="status")
            yield Static(Text("per task kind, the busiest first", style="bold"),
                         classes="exact-section")
            yield RowTable(id="exact-kinds")
            yield Static(Text(f"busiest tasks (at most {MAX_TASKS})", style="bold"),
                         classes="exact-section")
            yield RowTable(id="exact-tasks")
            yield Static(HINT, classes="page-hint")

    def on_mount(self) -> None:
        self.query_one("#exact-kinds", RowTable).set_columns(KIND_COLUMNS)
        self.query_one("#exact-tasks", RowTable).set_columns(TASK_COLUMNS)
        self.query_one("#exact-kinds", RowTable).focus()
        if self.report is not None:
            self._show_report()
        if self.poll:
            self.action_refresh_report()
            self._timer = self.set_interval(POLL_SECONDS, self._tick)

    def _tick(self) -> None:
        if not self._asking:  # a slow answer is waited for, not cancelled and re-asked
            self.action_refresh_report()

    @work(exclusive=True, group="exact-report", exit_on_error=False)
    async def action_refresh_report(self) -> None:
        source = source_of(self)
        if source is None:
            return
        self._asking = True
        try:
            report = await source.exact_report()
        except UserError as exc:
            if self.is_attached:
                self._failed(str(exc))
            return
        finally:
            self._asking = False
        if not self.is_attached:
            return
        self.error = None
        self.report = report
        self.polls += 1
        self._show_report()
        finished = report is not None and not report.running
        if (finished or (report is None and self.seconds is None)) and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _failed(self, message: str) -> None:
        """Shown on the page; notified once per run of failures (not once a second)."""
        if self.error is None:
            self.app.notify(safe(message, 300).plain, severity="error", markup=False)
        self.error = message
        line = Text("exact report: ", style="bold")
        line.append_text(safe(message, 300))
        update_line(self.query_one("#exact-progress", Static), line)

    def _show_report(self) -> None:
        progress = self.query_one("#exact-progress", Static)
        report = self.report
        if report is None:
            update_line(progress, Text(
                "no exact accounting has run in this process yet (x in the Tasks view starts "
                "one)" if self.seconds is None else "waiting for the report…"))
            return
        update_line(progress, progress_line(report))
        self.query_one("#exact-kinds", RowTable).set_rows(kind_rows(report))
        self.query_one("#exact-tasks", RowTable).set_rows(task_rows(report))

    def action_close(self) -> None:
        self.dismiss(None)
