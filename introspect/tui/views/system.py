"""1 System: interpreter, platform, argv, limits, agent config, exporters in use."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from introspect.textfmt import age
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.text import safe


def _row(label: str, value: Text | str) -> Text:
    line = Text(f"{label:<18}", style="bold")
    line.append_text(value if isinstance(value, Text) else Text(value))
    return line


def limitation_rows(limitations: list[str]) -> list[Text]:
    """What the agent can't do for this loop (uvloop: no exact accounting…), one per line."""
    if not limitations:
        return [_row("limitations", "none")]
    rows = []
    for index, note in enumerate(limitations[:20]):
        value = Text("• ")
        value.append_text(safe(note, 300))
        rows.append(_row("limitations" if index == 0 else "", value))
    return rows


class SystemView(View):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="system-body")

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        node, proc, loop, agent = snap.node, snap.process, snap.loop, snap.agent
        lines = [
            _row("host", safe(node.hostname)),
            _row("pid / ppid", f"{node.pid} / {node.ppid}"),
            _row("python", safe(f"{node.python}  {node.executable}", 100)),
            _row("platform", safe(node.platform)),
            _row("argv", safe(" ".join(node.argv), 300)),
            _row("uptime", age(proc.uptime_seconds)),
            _row("file descriptors", f"{proc.open_fds} open, limit {proc.max_fds or '?'}"),
            _row("threads", str(proc.threads)),
            _row("children", ", ".join(map(str, proc.children)) or "none"),
            _row("event loop", safe(f"{loop.loop_class or '?'} on thread {loop.thread or '?'}"
                                    f" ({'running' if loop.running else 'not running'})", 100)),
        ]
        if agent is not None:
            exporters = ["introspect protocol"]
            if agent.metrics:
                exporters.append(f"Prometheus {agent.metrics}")
            if agent.otlp:
                exporters.append("OpenTelemetry OTLP")
            errors = ", ".join(f"{k}: {v}" for k, v in agent.collector_errors.items())
            lines += [
                Text(""),
                _row("agent", safe(f"introspect {agent.version}", 60)),
                _row("listening on", safe(", ".join(agent.listen), 200)),
                _row("exporters", safe(", ".join(exporters), 200)),
                _row("console", "enabled" if agent.console else "disabled"),
                _row("block threshold", f"{agent.block_threshold:g}s"),
                _row("clients", str(agent.clients)),
                _row("collect time", f"{agent.collect_seconds * 1000:.2f}ms per snapshot"),
                _row("collector errors", safe(errors or "none", 200)),
                *limitation_rows(getattr(agent, "limitations", None) or []),
            ]
        self.query_one("#system-body", Static).update(Text("\n").join(lines))
