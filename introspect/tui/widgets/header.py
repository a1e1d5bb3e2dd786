"""The header: who we watch and how it is doing, at a glance, plus the connection state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from introspect.eventtext import STUCK_SECONDS
from introspect.textfmt import age, byte_size, clock_time, duration, millis
from introspect.textsafe import escape
from introspect.tui.state.connection import (
    Connected,
    Connecting,
    ConnectionState,
    Disconnected,
    NoTarget,
    Refused,
    Replaying,
    TargetExited,
)
from introspect.tui.state.model import ObserverState
from introspect.tui.widgets.text import safe, theme_color


def connection_text(state: ConnectionState, widget: object) -> Text:
    ok, warn, err = (theme_color(widget, n) for n in ("success", "warning", "error"))
    if isinstance(state, Connected):
        return Text(f"● live ({state.role})", style=ok)
    if isinstance(state, Connecting):
        return Text("… connecting", style=warn)
    if isinstance(state, Disconnected):
        return Text(f"✖ disconnected, retry #{state.attempt} in {state.retry_in:.1f}s",
                    style=f"bold {err}")
    if isinstance(state, TargetExited):
        return Text("✖ target exited", style=f"bold {err}")
    if isinstance(state, Replaying):
        icon = "▶" if state.playing else "⏸"
        at = "" if state.frame_time is None else f" at {clock_time(state.frame_time)}"
        return Text(f"{icon} replay {state.index + 1}/{state.total}{at} ×{state.speed:g}",
                    style=warn)
    if isinstance(state, Refused):
        return Text(f"✖ refused: {escape(state.reason, 60)}", style=f"bold {err}")
    if isinstance(state, NoTarget):
        return Text("no target: pick a node", style=warn)
    return Text("")


class HeaderBar(Static):
    def show(self, model: ObserverState, connection: ConnectionState, paused: bool) -> None:
        snap = model.snapshot
        line1 = Text()
        if snap is None:
            line1.append("introspect top  ", style="bold")
        else:
            node = snap.node
            line1.append_text(safe(node.hostname, 24, style="bold"))
            line1.append(f"  pid {node.pid}  py {node.python}  "
                         f"up {age(snap.process.uptime_seconds)}  ")
        line1.append_text(connection_text(connection, self))
        if paused:
            line1.append("  ⏸ display paused", style=f"bold {theme_color(self, 'warning')}")
        line2 = Text()
        sample = model.latest()
        if snap is not None and sample is not None:
            line2 = figures_line(model, self, self.content_region.width or 200)
        self.update(Text("\n").join([line1, line2]), layout=False)  # always 2 lines (CSS)


def figures_line(model: ObserverState, widget: object, width: int) -> Text:
    """`STUCK 3.2s  lag 12.0ms  rq 0  cpu 4%  …`: the loop's health first, then the rest, each
    figure whole and two spaces apart; figures that do not fit `width` are left out, last
    first, so nothing runs together or is cut mid-number."""
    snap, sample = model.snapshot, model.latest()
    assert snap is not None and sample is not None
    loop = snap.loop
    lag = max(loop.lag_seconds, loop.lag_p99_seconds)
    warn, err = theme_color(widget, "warning"), theme_color(widget, "error")
    parts: list[Text] = []
    if loop.blocked_for_seconds >= STUCK_SECONDS:
        parts.append(Text(f"STUCK {duration(loop.blocked_for_seconds)}",
                          style=f"bold reverse {err}"))
    parts += [Text(f"lag {millis(lag)}", style=warn if lag >= 0.1 else ""),
              Text(f"rq {loop.ready}"),
              Text(f"exc {sample.exceptions_per_second:.1f}/s",
                   style=warn if sample.exceptions_per_second else ""),
              Text(f"tasks {snap.tasks.total}"),
              Text(f"cpu {sample.cpu_percent:.0f}%"),
              Text(f"rss {byte_size(sample.rss)}"),
              Text(f"thr {snap.process.threads}"),
              Text(f"gc {sample.gc_per_second:.1f}/s")]
    if model.dropped:
        parts.append(Text(f"dropped {model.dropped}", style=warn))
    line = Text()
    for part in parts:
        needed = len(part.plain) + (2 if line.plain else 0)
        if len(line.plain) + needed > width:
            break
        if line.plain:
            line.append("  ")
        line.append_text(part)
    return line
