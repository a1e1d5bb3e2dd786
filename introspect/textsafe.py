"""Data from the observed process (task names, messages, paths) is escaped before it reaches a
terminal: control characters and escape sequences are shown, never interpreted."""

from __future__ import annotations

import unicodedata

_SAFE_CACHE: dict[str, str] = {}


def escape(text: object, limit: int | None = 200) -> str:
    """Printable form of `text`: control/format characters become `\\xNN`/`\\uNNNN`; long
    text is cut with an ellipsis at `limit` characters."""
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit * 4:
        s = s[: limit * 4]  # bound the work on hostile 10 MB names
    out = []
    for ch in s:
        if ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Co", "Cs"):
            out.append(ch)
        elif ch in "\t":
            out.append(" ")
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    result = "".join(out)
    if limit is not None and len(result) > limit:
        result = result[: max(0, limit - 1)] + "…"
    return result


def escape_for_log(value: object, limit: int = 500) -> str:
    """For a log line on the host's stderr: an exception as its repr, anything else as text,
    escaped and bounded (an exception's repr or message can hold the program's data)."""
    try:
        text = repr(value) if isinstance(value, BaseException) else str(value)
    except Exception:  # a hostile __repr__ that raises: say what it is, not what it says
        text = f"<{type(value).__name__} whose repr failed>"
    return escape(text, limit)
