"""Fleet rows as text: cells shared by `introspect fleet` and the TUI's Fleet view."""

from __future__ import annotations

from collections.abc import Sequence

from introspect.fleet import queries as q
from introspect.fleet.ranking import ActiveAlert, Instance
from introspect.fleet.refresh import FleetReport
from introspect.textsafe import escape

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 12  # 5 minutes a cell over the last hour (refresh.SPARK_STEP)
# Sparkline scales: at least the alert threshold, so a quiet instance draws a quiet line.
SPARK_SCALES = {"lag_p99": q.LAG_P99_SECONDS, "backlog": q.BACKLOG_ITEMS_PER_10M}


def spark(values: Sequence[float | None], floor: float, width: int = SPARK_WIDTH) -> str:
    """The whole series in `width` cells (each the largest sample of its slice), bars relative
    to max(floor, the largest): a quiet instance draws a low line; ' ' = no sample."""
    data = list(values)
    if not any(v is not None for v in data):
        return ""
    cells: list[float | None] = []
    for i in range(min(width, len(data))):
        chunk = [v for v in data[i * len(data) // width:(i + 1) * len(data) // width]
                 if v is not None] if len(data) > width else [v for v in data[i:i + 1]
                                                              if v is not None]
        cells.append(max(chunk) if chunk else None)
    top = max(floor, max(v for v in cells if v is not None))
    return "".join(" " if v is None else BARS[min(len(BARS) - 1, max(
        1, round(v / top * (len(BARS) - 1))))] for v in cells)


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.1f}s"


def size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "-"


def count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def up_text(inst: Instance) -> str:
    return {True: "up", False: "DOWN", None: "?"}[inst.up]


def alert_text(alerts: Sequence[ActiveAlert], limit: int = 60) -> str:
    """`PythonTaskCrashLoop!, PythonEventLoopBlocked?` (! firing, ? pending)."""
    names: dict[str, str] = {}
    for a in alerts:  # one entry per alert name; firing wins over pending
        mark = "!" if a.state == "firing" else "?"
        if names.get(a.name) != "!":
            names[a.name] = mark
    return escape(", ".join(f"{n}{m}" for n, m in names.items()), limit)


def row_cells(inst: Instance) -> list[str]:
    """RANK-less cells in COLUMNS order."""
    v = inst.values
    return [f"{inst.score:.1f}", escape(inst.label, 60), up_text(inst), alert_text(inst.alerts),
            seconds(v.get("lag_p99")), spark(inst.sparklines.get("lag_p99", []),
                                             q.LAG_P99_SECONDS),
            count(v.get("backlog")), spark(inst.sparklines.get("backlog", []),
                                           q.BACKLOG_ITEMS_PER_10M),
            size(v.get("rss")), count(v.get("tasks")), escape("; ".join(inst.reasons()), 80)]


COLUMNS = ["SCORE", "INSTANCE", "UP", "ALERTS (!firing ?pending)", "LAG p99", "LAG 1h", "QUEUE",
           "QUEUE 1h", "RSS", "TASKS", "WHY"]


def report_text(report: FleetReport, rows: int | None = None) -> str:
    shown = report.instances[:rows] if rows else report.instances
    table = [["#", *COLUMNS]] + [[str(i + 1), *row_cells(inst)] for i, inst in enumerate(shown)]
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip()
             for r in table]
    down = sum(1 for i in report.instances if i.up is False)
    firing = sum(1 for i in report.instances for a in i.alerts if a.state == "firing")
    head = (f"{len(report.instances)} instances from {report.url}"
            + (f" matching {{{report.selector}}}" if report.selector else "")
            + f": {down} down, {firing} alerts firing ({report.requests} requests,"
            f" {report.seconds * 1000:.0f} ms)")
    tail = [escape(n, 200) for n in report.notes]
    if report.other_alerts:
        tail.append("alerts naming no listed instance: " + alert_text(report.other_alerts, 200))
    if rows and len(report.instances) > rows:
        tail.append(f"… {len(report.instances) - rows} more (--rows)")
    return "\n".join([head, *lines, *tail])
