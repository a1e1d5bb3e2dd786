"""The queue page (Enter in the Queues view): what the queue is bound to in the code, who
consumes and produces it (task kinds the agent saw in its get / put), its fill and trend."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from introspect.protocol.snapshot import QueueRow
from introspect.textfmt import short_path, sparkline
from introspect.tui.state.model import ObserverState, queue_key
from introspect.tui.widgets.text import safe

if TYPE_CHECKING:
    from introspect.tui.app import IntrospectApp

TREND_WIDTH = 60  # the model keeps 60 samples per queue


def queue_title(row: QueueRow | None, key: str) -> Text:
    """`queue Gateway.inbox` (the binding the code gives it), else its discovery name."""
    out = Text("queue ", style="bold")
    out.append_text(safe(row.bound_to or short_path(row.name) if row else short_path(key), 120,
                         style="bold"))
    return out


def render_queue(row: QueueRow | None, model: ObserverState, key: str) -> Text:
    out = Text()
    if row is None:
        out.append("gone: no longer in the target's snapshot", style="dim")
        return out
    out.append("created at ")
    out.append_text(safe(short_path(row.created_at) or "?", 160))
    out.append(f"\ntype       {row.type}")
    capacity = str(row.capacity) if row.capacity else "unbounded"
    out.append(f"\nlength     {row.length} of {capacity}")
    if row.capacity:
        out.append(f" ({row.length / row.capacity:.0%} full)")
    out.append(f"\nwaiting    {row.getters} getters, {row.putters} putters")
    trend = list(model.queue_trends.get(key, ()))
    out.append("\ntrend      ")
    if trend:
        out.append(sparkline(trend, TREND_WIDTH))
        out.append(f"  min {min(trend)}  max {max(trend)}  last {trend[-1]}", style="dim")
    else:
        out.append("(no samples yet)", style="dim")
    for title, kinds, empty in (
            ("CONSUMERS (get)", row.consumers, "none seen yet: nothing has taken an item"),
            ("PRODUCERS (put)", row.producers, "none seen yet: nothing has added an item")):
        out.append(f"\n\n{title}", style="bold")
        if not kinds:
            out.append(f"\n  {empty}", style="dim")
        for kind in kinds:
            out.append("\n  ")
            out.append_text(safe(kind, 120))
    out.append("\n\nOwners are task kinds seen in get_nowait/put_nowait or waiting in "
               "get/put (asyncio queues only).", style="dim")
    return out


class QueueDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Back"), Binding("q", "close", "Back", show=False)]

    def __init__(self, key: str) -> None:
        super().__init__(id="queue-detail")
        self.key = key

    def compose(self) -> ComposeResult:
        with Vertical(classes="page"):
            yield Static(Text("queue", style="bold"), id="queue-title", classes="page-title")
            with VerticalScroll():
                yield Static(Text("loading…"), id="queue-detail-body", classes="page-body")
            yield Static("Esc: back   (follows the live updates)", classes="page-hint")

    def on_mount(self) -> None:
        self.show_current()
        self.set_interval(1.0, self.show_current)

    def show_current(self) -> None:
        model = cast("IntrospectApp", self.app).model
        snap = model.snapshot
        row = next((q for q in snap.queues if queue_key(q) == self.key), None) \
            if snap is not None else None
        self.query_one("#queue-title", Static).update(queue_title(row, self.key))
        self.query_one("#queue-detail-body", Static).update(render_queue(row, model, self.key))

    def action_close(self) -> None:
        self.dismiss(None)
