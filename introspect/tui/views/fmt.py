"""Formatting shared by the views. Everything that came from the observed process goes through
`safe()`: escaped (no escape sequences reach the terminal), truncated, and wrapped in a
`rich.text.Text` so `[markup]` in a task name is shown, not interpreted."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from introspect.textsafe import escape

BARS = "▁▂▃▄▅▆▇█"


def safe(value: object, limit: int = 60, style: str = "") -> Text:
    return Text(escape(value, limit), style=style, no_wrap=True, overflow="ellipsis")


def short_path(location: str) -> str:
    """`/long/site-packages/pkg/mod.py:12 fn` → `pkg/mod.py:12 fn` (keeps the end, which
    is what tells tasks apart)."""
    path, sep, rest = location.partition(":")
    parts = path.split("/")
    if len(parts) > 3:
        path = "/".join(parts[-3:])
    return f"{path}{sep}{rest}"


def duration(seconds: float) -> str:
    if seconds < 0:
        seconds = 0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def millis(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def sparkline(values: Iterable[float], width: int = 16) -> str:
    data = list(values)[-width:]
    if not data:
        return ""
    low, high = min(data), max(data)
    span = high - low
    if span <= 0:
        return (BARS[0] if high == 0 else BARS[3]) * len(data)
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / span * (len(BARS) - 1) + 0.5))]
                   for v in data)


def tail(value: object, limit: int = 40) -> Text:
    """Like `safe`, but keeps the end: `introspect.demo.bottleneck.gateway_producer` is told
    apart from its siblings by its last part."""
    text = escape(value, None if limit is None else limit * 8)
    if len(text) > limit:
        text = "…" + text[-(limit - 1):]
    return Text(text, no_wrap=True)


def theme_color(widget: object, name: str, fallback: str = "") -> str:
    """A colour of the running theme (`$error`, `$warning`…), for Rich styles built in code."""
    app = getattr(widget, "app", None)
    try:
        return str(app.theme_variables.get(name, fallback)) if app is not None else fallback
    except Exception:
        return fallback
