"""Rank instances by trouble from one refresh's answers (the formula is in docs/fleet.md).

Each signal is divided by its alert threshold (so 1.0 = where the alert starts) and compressed
with log2(1 + ratio): a signal at its threshold scores 1, eight times over it scores ~3.2, so
one wild signal cannot hide every other instance. A scrape that fails scores DOWN_SCORE (above
anything the signals can reach), and each active alert adds its severity weight (halved while
pending). Ties go to job, then instance, so the order is stable between refreshes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from introspect.fleet import queries as q

DOWN_SCORE = 100.0
ALERT_WEIGHTS = {"critical": 2.0, "warning": 1.0}
OTHER_ALERT_WEIGHT = 0.5
PENDING_FACTOR = 0.5

REASON_MIN = 0.5  # a part of the score below this (signal < ~40 % of its threshold) is no reason


def _secs(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


# signal -> (threshold, short label, how to print a value)
SIGNALS: dict[str, tuple[float, str, Callable[[float], str]]] = {
    "lag_p99": (q.LAG_P99_SECONDS, "lag p99", _secs),
    "blocked": (q.BLOCKED_SECONDS_PER_5M, "blocked", lambda v: f"{_secs(v)}/5m"),
    "backlog_growth": (q.BACKLOG_ITEMS_PER_10M, "backlog", "+{:.0f}/10m".format),
    "crashes": (q.CRASHES_PER_15M, "crashes", "{:.0f}/15m".format),
    "vanished": (1.0, "vanished kinds", "{:.0f}".format),
    "memory_growth": (q.MEMORY_GROWTH_PER_HOUR, "memory", "+{:.0%}/h".format),
}

Key = tuple[str, str, str, str]


@dataclass
class ActiveAlert:
    name: str
    state: str  # "firing" | "pending"
    severity: str
    labels: dict[str, str]
    active_at: str = ""

    def weight(self) -> float:
        base = ALERT_WEIGHTS.get(self.severity, OTHER_ALERT_WEIGHT)
        return base if self.state == "firing" else base * PENDING_FACTOR

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "severity": self.severity,
                "labels": self.labels, "active_at": self.active_at}


@dataclass
class Instance:
    job: str
    instance: str
    pid: str = ""
    worker: str = ""
    up: bool | None = None  # None: no `up` series (not scraped under this selector)
    scrape_error: str = ""
    values: dict[str, float] = field(default_factory=dict)  # signal name -> value (own unit)
    alerts: list[ActiveAlert] = field(default_factory=list)
    sparklines: dict[str, list[float | None]] = field(default_factory=dict)
    components: dict[str, float] = field(default_factory=dict)  # signal -> score part
    score: float = 0.0

    @property
    def key(self) -> Key:
        return (self.job, self.instance, self.pid, self.worker)

    @property
    def label(self) -> str:
        extra = "".join(f" {n}={v}" for n, v in (("pid", self.pid), ("worker", self.worker)) if v)
        return f"{self.job}/{self.instance}{extra}"

    def reasons(self, most: int = 3) -> list[str]:
        """The biggest score parts, as short readable phrases."""
        if self.up is False:
            return ["down" + (f": {self.scrape_error}" if self.scrape_error else "")]
        parts = sorted(((v, k) for k, v in self.components.items() if v >= REASON_MIN),
                       reverse=True)
        out = []
        for _part, name in parts[:most]:
            _threshold, label, fmt = SIGNALS[name]
            out.append(f"{label} {fmt(self.values[name])}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "instance": self.instance, "pid": self.pid or None,
                "worker": self.worker or None, "up": self.up, "scrape_error": self.scrape_error,
                "score": round(self.score, 3),
                "components": {k: round(v, 3) for k, v in self.components.items()},
                "values": self.values, "reasons": self.reasons(),
                "alerts": [a.to_dict() for a in self.alerts], "sparklines": self.sparklines}


def score(inst: Instance) -> float:
    inst.components = {}
    for name, (threshold, _label, _fmt) in SIGNALS.items():
        value = inst.values.get(name)
        if value is None or not math.isfinite(value) or value <= 0:
            continue
        if name == "memory_growth" and inst.values.get("rss", 0.0) < q.MEMORY_MIN_BYTES:
            continue  # as PythonMemoryGrowing: small processes' growth is start-up noise
        inst.components[name] = math.log2(1 + value / threshold)
    inst.score = sum(inst.components.values()) + sum(a.weight() for a in inst.alerts)
    if inst.up is False:
        inst.score += DOWN_SCORE
    return inst.score


def _number(sample: list[Any]) -> float | None:
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        return None
    return value if math.isfinite(value) else None


def build_instances(answers: dict[str, list[dict[str, Any]]]) -> dict[Key, Instance]:
    """Rows from the instant queries' answers. An instance-level key (no pid/worker) is folded
    into the worker-level rows of the same target when there are some (its `up` applies to
    each of them)."""
    rows: dict[Key, Instance] = {}
    bare: dict[Key, dict[str, float]] = {}
    for signal, result in answers.items():
        for series in result:
            key = q.identity(series.get("metric") or {})
            value = _number(series.get("value") or [])
            if value is None:
                continue
            if not key[2] and not key[3]:
                bare.setdefault(key, {})[signal] = value
                continue
            rows.setdefault(key, Instance(*key)).values[signal] = value
    by_target: dict[tuple[str, str], list[Instance]] = {}
    for inst in rows.values():
        by_target.setdefault((inst.job, inst.instance), []).append(inst)
    for key, values in bare.items():
        targets = by_target.get((key[0], key[1])) or [rows.setdefault(key, Instance(*key))]
        for inst in targets:
            for signal, value in values.items():
                inst.values.setdefault(signal, value)
    for inst in rows.values():
        if "up" in inst.values:
            inst.up = inst.values.pop("up") == 1.0
    return rows


def parse_alerts(raw: list[dict[str, Any]]) -> list[ActiveAlert]:
    out = []
    for alert in raw:
        labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        state = str(alert.get("state", ""))
        if state not in ("firing", "pending"):
            continue
        out.append(ActiveAlert(name=labels.get("alertname", "?"), state=state,
                               severity=labels.get("severity", ""), labels=labels,
                               active_at=str(alert.get("activeAt", ""))))
    return out


def attach_alerts(rows: dict[Key, Instance], alerts: list[ActiveAlert]) -> list[ActiveAlert]:
    """Put each alert beside the rows it names (job and instance equal; pid/worker too when
    the alert has them). Returns the alerts that name no row (fleet-wide ones)."""
    unplaced = []
    for alert in alerts:
        placed = False
        a = alert.labels
        for inst in rows.values():
            if a.get("job") != inst.job or a.get("instance") != inst.instance:
                continue
            if any(a.get(n) and a.get(n) != getattr(inst, n) for n in ("pid", "worker")):
                continue
            inst.alerts.append(alert)
            placed = True
        if not placed:
            unplaced.append(alert)
    for inst in rows.values():
        inst.alerts.sort(key=lambda x: (x.state != "firing", -x.weight(), x.name))
    return unplaced


def rank(rows: dict[Key, Instance]) -> list[Instance]:
    for inst in rows.values():
        score(inst)
    return sorted(rows.values(), key=lambda i: (-i.score, i.job, i.instance, i.pid, i.worker))


def attach_sparklines(rows: dict[Key, Instance], signal: str,
                      matrix: list[dict[str, Any]], start: float, step: float,
                      points: int) -> None:
    """Range-query series onto their rows, as `points` values (None where no sample)."""
    for series in matrix:
        key = q.identity(series.get("metric") or {})
        line: list[float | None] = [None] * points
        for sample in series.get("values") or []:
            try:
                index = round((float(sample[0]) - start) / step)
            except (TypeError, ValueError, IndexError):
                continue
            if 0 <= index < points:
                line[index] = _number(sample)
        targets = [rows[key]] if key in rows else [
            inst for inst in rows.values() if (inst.job, inst.instance) == key[:2]]
        for inst in targets:
            inst.sparklines[signal] = line
