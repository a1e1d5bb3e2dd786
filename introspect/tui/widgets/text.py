"""Rich text shared by the views (numbers and paths are formatted by `introspect.textfmt`).
Everything that came from the observed process goes through `safe()`: escaped (no escape
sequences reach the terminal), truncated, and wrapped in a `rich.text.Text` so `[markup]` in a
task name is shown, not interpreted."""

from __future__ import annotations

from rich.text import Text

from introspect.textfmt import fit_location
from introspect.textsafe import escape


def safe(value: object, limit: int = 60, style: str = "") -> Text:
    return Text(escape(value, limit), style=style, no_wrap=True, overflow="ellipsis")


def tail(value: object, limit: int = 40) -> Text:
    """Like `safe`, but keeps the end: `introspect.demo.bottleneck.gateway_producer` is told
    apart from its siblings by its last part."""
    text = escape(value, None if limit is None else limit * 8)
    if len(text) > limit:
        text = "…" + text[-(limit - 1):]
    return Text(text, no_wrap=True)


def location(value: str, width: int) -> Text:
    """A `file:line function` place in `width` cells that keeps `file:line` (see
    `textfmt.fit_location`), escaped."""
    return Text(fit_location(escape(value, 1000), width), no_wrap=True)


def theme_color(widget: object, name: str, fallback: str = "") -> str:
    """A colour of the running theme (`$error`, `$warning`…), for Rich styles built in code."""
    app = getattr(widget, "app", None)
    try:
        return str(app.theme_variables.get(name, fallback)) if app is not None else fallback
    except Exception:
        return fallback
