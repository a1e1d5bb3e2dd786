"""7 Memory & GC: RSS, per-generation counts, collections, pauses, uncollectable."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from introspect.textfmt import byte_size, millis, sparkline
from introspect.tui.messages import ConfirmGc
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.text import theme_color

# Buckets (upper bounds, seconds) for the histogram of GC pause time per update interval.
PAUSE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, float("inf")]


def pause_histogram(pauses: list[float]) -> list[tuple[str, int]]:
    counts = [0] * len(PAUSE_BUCKETS)
    for p in pauses:
        counts[next(i for i, b in enumerate(PAUSE_BUCKETS) if p <= b)] += 1
    labels = []
    low = 0.0
    for bound in PAUSE_BUCKETS:
        labels.append(f"> {millis(low)}" if bound == float("inf") else f"≤ {millis(bound)}")
        low = bound
    return list(zip(labels, counts, strict=False))


class MemoryView(View):
    BINDINGS = [Binding("G", "collect", "Force GC")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="memory-body")

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        gc, proc = snap.gc, snap.process
        history = list(model.history)
        out = Text("MEMORY", style="bold")
        out.append(f"\n  rss {byte_size(proc.rss_bytes)}   ")
        out.append(sparkline((s.rss for s in history), 40))
        if gc.objects:
            out.append(f"\n  objects tracked by the GC {gc.objects}")
        out.append("\n\nGARBAGE COLLECTOR", style="bold")
        out.append(f"  {'enabled' if gc.enabled else 'DISABLED'}")
        if gc.thresholds:
            out.append(f"  thresholds {'/'.join(map(str, gc.thresholds))}")
        out.append(f"\n  {'generation':<12}{'count':>8}{'collections':>13}{'collected':>12}"
                   f"{'uncollectable':>15}")
        for g in range(3):
            def at(values: list[int], i: int = g) -> str:
                return str(values[i]) if i < len(values) else "-"
            uncollectable = at(gc.uncollectable)
            out.append(f"\n  {g:<12}{at(gc.counts):>8}{at(gc.collections):>13}"
                       f"{at(gc.collected):>12}")
            out.append(f"{uncollectable:>15}",
                       style=f"bold {theme_color(self, 'error')}"
                       if uncollectable not in ("0", "-") else "")
        out.append(f"\n  pauses: total {millis(gc.pause_seconds_total)}, longest "
                   f"{millis(gc.pause_max_seconds)}")
        if history:
            out.append(f"   collections/s {history[-1].gc_per_second:.1f}  ")
            out.append(sparkline((s.gc_per_second for s in history), 30))
        pauses = [s.gc_pause_seconds for s in history[1:]]
        out.append("\n\nGC PAUSE TIME PER UPDATE INTERVAL", style="bold")
        out.append(f"  (last {len(pauses)} intervals)", style="dim")
        peak = max((c for _l, c in pause_histogram(pauses)), default=0) or 1
        for label, count in pause_histogram(pauses):
            out.append(f"\n  {label:>10} {count:>5} ")
            out.append("█" * round(count / peak * 30))
        self.query_one("#memory-body", Static).update(out)

    def action_collect(self) -> None:
        self.post_message(ConfirmGc())
