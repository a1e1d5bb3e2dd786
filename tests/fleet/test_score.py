"""The score of docs/fleet.md on hand-made query answers: each signal log2(1 + value /
threshold), alerts by severity (halved while pending), +100 when down; worker rows keep apart
and inherit their target's `up`."""

from __future__ import annotations

import math

from introspect.fleet.ranking import attach_alerts, build_instances, parse_alerts, rank


def series(value: float, **labels: str) -> dict:
    return {"metric": {"job": "api", **labels}, "value": [0, str(value)]}


def test_formula_and_order() -> None:
    answers = {
        "up": [series(1, instance="a"), series(1, instance="b"), series(0, instance="c"),
               series(1, instance="d")],
        "lag_p99": [series(0.25, instance="a"), series(0.75, instance="b")],
        "crashes": [series(21, instance="b")],
        "memory_growth": [series(5.0, instance="d")],  # huge growth, but a small process
        "rss": [series(50e6, instance="d")],
    }
    rows = build_instances(answers)
    alerts = parse_alerts([
        {"labels": {"alertname": "PythonTaskCrashLoop", "severity": "warning", "job": "api",
                    "instance": "b"}, "state": "pending"},
        {"labels": {"alertname": "IntrospectTargetDown", "severity": "critical", "job": "api",
                    "instance": "c"}, "state": "firing"},
        {"labels": {"alertname": "Watchdog", "severity": "none"}, "state": "firing"},
    ])
    unplaced = attach_alerts(rows, alerts)
    ranked = rank(rows)
    assert [i.instance for i in ranked] == ["c", "b", "a", "d"]
    by = {i.instance: i for i in ranked}
    assert by["a"].score == 1.0  # at the lag threshold exactly
    assert math.isclose(by["b"].score, 2.0 + 3.0 + 0.5)  # lag 3x, crashes 7x, pending warning
    assert by["c"].score == 102.0 and by["c"].up is False
    assert by["d"].score == 0.0  # memory growth below 128 MiB RSS does not count
    assert [a.name for a in unplaced] == ["Watchdog"]
    assert by["b"].reasons()[0] == "crashes 21/15m"


def test_workers_behind_one_target_are_rows_of_their_own() -> None:
    answers = {
        "up": [series(1, instance="h:9464")],
        "lag_p99": [series(0.1, instance="h:9464", pid="11"),
                    series(0.5, instance="h:9464", pid="12")],
    }
    ranked = rank(build_instances(answers))
    assert [(i.pid, i.up) for i in ranked] == [("12", True), ("11", True)]
