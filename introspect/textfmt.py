"""How numbers and places read on screen, for the CLI and the TUI alike: durations, ages,
byte sizes, source locations, and the quantile shown for a reported histogram. Plain strings,
no Rich or Textual (the CLI must not need them); `textsafe` escapes what the target sent."""

from __future__ import annotations

import time
from collections.abc import Iterable

BARS = "▁▂▃▄▅▆▇█"


def duration(seconds: float) -> str:
    """A measured time, precise at every scale: `80µs`, `12.5ms`, `3.2s`, `4.5m`, `2.1h`."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def age(seconds: float) -> str:
    """How old something is (a task, an uptime, an error): short and coarse, because it is read
    in a column that changes every second: `350ms`, `12.5s`, `14m`, `3.1h`, `2.0d`."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def clock_time(moment: float, now: float | None = None) -> str:
    """Local wall-clock time of an epoch `moment`: `02:54:01` today, `2026-11-30 02:54:01` on
    another day (a recording replayed the next morning)."""
    when = time.localtime(moment)
    today = time.localtime(time.time() if now is None else now)
    if when[:3] == today[:3]:
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d %H:%M:%S", when)


def millis(seconds: float) -> str:
    """A latency always in milliseconds, so a column of them compares at a glance."""
    return f"{seconds * 1000:.1f}ms"


def byte_size(n: float) -> str:
    """`512 B`, `1.5 KiB`, `230.4 MiB` (powers of 1024)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f}"


def short_path(location: str) -> str:
    """`/long/site-packages/pkg/mod.py:12 fn` → `pkg/mod.py:12 fn`: keeps the end, which is
    what tells tasks apart, and reads the same whatever directory the client runs in."""
    path, sep, rest = location.partition(":")
    parts = path.split("/")
    if len(parts) > 3:
        path = "/".join(parts[-3:])
    return f"{path}{sep}{rest}"


def sparkline(values: Iterable[float], width: int = 16) -> str:
    """The last `width` values as block characters scaled between their minimum and maximum."""
    data = list(values)[-width:]
    if not data:
        return ""
    low, high = min(data), max(data)
    span = high - low
    if span <= 0:
        return (BARS[0] if high == 0 else BARS[3]) * len(data)
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / span * (len(BARS) - 1) + 0.5))]
                   for v in data)


def histogram_quantile(hist: list[list[float]], q: float) -> float:
    """The upper bound of the reported log2 bucket holding the q-quantile (`hist` is
    `[[upper_bound, count], ...]`, as exact accounting reports it)."""
    total = sum(n for _le, n in hist)
    if not total:
        return 0.0
    seen = 0.0
    for le, n in hist:
        seen += n
        if seen >= q * total:
            return le
    return hist[-1][0]


def fit_location(location: str, width: int) -> str:
    """`path/file.py:88 function` in `width` cells, keeping `file.py:88` above all, then the
    function: the path's directories go first (cut from the left, `…file.py:88`), then the
    function's end (`handle_requ…`)."""
    location = short_path(location)
    if len(location) <= width:
        return location
    place, _, function = location.partition(" ")
    least_place = min(len(place), len(place.rsplit("/", 1)[-1]) + 1)  # "…file.py:88"
    room = width - least_place - 1  # for the function, after a space
    if function and room >= 4:
        if len(function) > room:
            function = function[:room - 1] + "…"
        place_room = width - len(function) - 1
    else:
        function, place_room = "", width
    if len(place) > place_room:
        place = "…" + place[-(place_room - 1):] if place_room > 1 else place[-place_room:]
    return f"{place} {function}" if function else place
