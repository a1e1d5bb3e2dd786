"""The header: who we watch and how it is doing, at a glance, plus the connection state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from introspect.textfmt import age, byte_size, millis
from introspect.tui.state.connection import (
    Connected,
    Connecting,
    ConnectionState,
    Disconnected,
    NoTarget,
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
        return Text(f"{icon} replay {state.index + 1}/{state.total} ×{state.speed:g}",
                    style=warn)
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
            loop = snap.loop
            lag = max(loop.lag_seconds, loop.lag_p99_seconds)
            warn = theme_color(self, "warning")
            line2.append(f"cpu {sample.cpu_percent:.0f}%  rss {byte_size(sample.rss)}  "
                         f"tasks {snap.tasks.total}  thr {snap.process.threads}  ")
            line2.append(f"lag {millis(lag)}", style=warn if lag >= 0.1 else "")
            line2.append(f"  rq {loop.ready}  gc {sample.gc_per_second:.1f}/s  ")
            line2.append(f"exc {sample.exceptions_per_second:.1f}/s",
                         style=warn if sample.exceptions_per_second else "")
            if model.dropped:
                line2.append(f"  dropped {model.dropped}", style=warn)
        self.update(Text("\n").join([line1, line2]), layout=False)  # always 2 lines (CSS)
