"""2 Load: charts over the last minutes (one sparkline per measure, current value in the label)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from introspect.textfmt import byte_size, millis
from introspect.tui.state.model import ObserverState, Sample
from introspect.tui.views.base import View
from introspect.tui.widgets.sparkline import OneLineSparkline

Chart = tuple[str, Callable[[Sample], float], Callable[[Sample], str]]

CHARTS: list[Chart] = [
    ("loop lag p99", lambda s: s.lag_p99,
     lambda s: f"p50 {millis(s.lag_p50)}  p99 {millis(s.lag_p99)}  max {millis(s.lag_max)}"),
    ("run-queue", lambda s: s.ready, lambda s: f"{s.ready} ready handles"),
    ("tasks", lambda s: s.tasks, lambda s: f"{s.tasks} live"),
    ("memory (RSS)", lambda s: s.rss, lambda s: byte_size(s.rss)),
    ("CPU", lambda s: s.cpu_percent, lambda s: f"{s.cpu_percent:.0f}%"),
    ("GC collections", lambda s: s.gc_per_second, lambda s: f"{s.gc_per_second:.1f}/s"),
    ("GC pause", lambda s: s.gc_pause_seconds,
     lambda s: f"{millis(s.gc_pause_seconds)} in the last interval"),
    ("exceptions", lambda s: s.exceptions_per_second,
     lambda s: f"{s.exceptions_per_second:.1f}/s"),
]


class LoadView(View):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for i, _chart in enumerate(CHARTS):
                yield Static(id=f"load-label-{i}", classes="chart-label")
                yield OneLineSparkline([], id=f"load-chart-{i}", summary_function=max)

    def show(self, model: ObserverState) -> None:
        history = list(model.history)
        if not history:
            return
        latest = history[-1]
        span = history[-1].time - history[0].time
        for i, (title, value, label) in enumerate(CHARTS):
            text = Text(f"{title:<16}", style="bold")
            text.append(label(latest))
            values = [float(value(s)) for s in history]
            text.append(f"   (last {span:.0f}s)", style="dim")
            # one line each (CSS height 1): no screen-wide relayout
            self.query_one(f"#load-label-{i}", Static).update(text, layout=False)
            self.query_one(f"#load-chart-{i}", OneLineSparkline).data = values
