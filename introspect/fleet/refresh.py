"""One fleet refresh: the batched instant queries and `/api/v1/alerts` at one evaluation time,
in parallel; the last hour's range queries at most once a minute; the targets list
only when some instance is down (for its scrape error)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from introspect.fleet.api import EndpointMissing, PrometheusAPI
from introspect.fleet.queries import FleetQueries
from introspect.fleet.ranking import (
    ActiveAlert,
    Instance,
    attach_alerts,
    attach_sparklines,
    build_instances,
    parse_alerts,
    rank,
)

SPARK_WINDOW = 3600.0  # the last hour
SPARK_STEP = 300.0  # one point per 5 minutes (13 points; 5x cheaper than a point a minute)
SPARK_EVERY = 60.0  # the range queries are made again at most once a minute
PARALLEL = 4  # requests in flight per refresh


@dataclass
class FleetReport:
    instances: list[Instance]
    other_alerts: list[ActiveAlert]  # active alerts that name no listed instance
    evaluated_at: float
    requests: int  # HTTP requests this refresh made
    seconds: float  # wall time of the refresh
    selector: str = ""
    url: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"prometheus": self.url, "selector": self.selector,
                "evaluated_at": self.evaluated_at, "requests": self.requests,
                "seconds": round(self.seconds, 3),
                "instances": [i.to_dict() for i in self.instances],
                "other_alerts": [a.to_dict() for a in self.other_alerts], "notes": self.notes}


class FleetSource:
    """Refreshes a FleetReport from one Prometheus-compatible server; keeps the sparklines
    between refreshes so they cost two range queries a minute, not two per refresh."""

    def __init__(self, api: PrometheusAPI, queries: FleetQueries, *,
                 sparklines: bool = True) -> None:
        self.api = api
        self.queries = queries
        self.sparklines = sparklines
        self._spark_at = 0.0
        self._spark: dict[str, tuple[list[dict[str, Any]], float, int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="fleet")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def refresh(self, now: float | None = None) -> FleetReport:
        started = time.monotonic()
        before = self.api.requests
        at = time.time() if now is None else now
        instant = self.queries.instant()
        futures = {name: self._pool.submit(self.api.query, promql, at)
                   for name, promql in instant.items()}
        alerts_future = self._pool.submit(self.api.alerts)
        spark_futures = {}
        if self.sparklines and at - self._spark_at >= SPARK_EVERY:
            start = at - SPARK_WINDOW
            spark_futures = {name: self._pool.submit(self.api.query_range, promql, start, at,
                                                     SPARK_STEP)
                             for name, promql in self.queries.sparklines().items()}
        answers = {name: f.result() for name, f in futures.items()}
        notes = []
        try:
            raw_alerts = alerts_future.result()
        except EndpointMissing:  # e.g. a query frontend that does not serve the ruler's alerts
            raw_alerts = []
            notes.append(f"{self.api.url} does not serve /api/v1/alerts: no alert column")
        if spark_futures:
            points = int(SPARK_WINDOW // SPARK_STEP) + 1
            self._spark = {name: (f.result(), at - SPARK_WINDOW, points)
                           for name, f in spark_futures.items()}
            self._spark_at = at
        rows = build_instances(answers)
        other = attach_alerts(rows, parse_alerts(raw_alerts))
        for name, (matrix, start, points) in self._spark.items():
            attach_sparklines(rows, name, matrix, start, SPARK_STEP, points)
        ranked = rank(rows)
        if any(i.up is False for i in ranked):
            self._scrape_errors(ranked)
        if len(answers.get("up", [])) >= self.queries.limit:
            notes.append(f"more than {self.queries.limit} instances: showing the "
                         f"{self.queries.limit} worst of each signal (raise --limit or narrow "
                         "--selector)")
        if not ranked:
            notes.append("Prometheus knows no instance" + (
                f" matching {{{self.queries.selector}}}" if self.queries.selector else ""))
        return FleetReport(instances=ranked, other_alerts=other, evaluated_at=at,
                           requests=self.api.requests - before,
                           seconds=time.monotonic() - started, selector=self.queries.selector,
                           url=self.api.url, notes=notes)

    def _scrape_errors(self, ranked: list[Instance]) -> None:
        down = {(i.job, i.instance): i for i in ranked if i.up is False}
        try:
            targets = self.api.targets()
        except EndpointMissing:  # Thanos/Mimir may not serve it: the rows stay without a reason
            return
        for target in targets:
            labels = target.get("labels") or {}
            inst = down.get((labels.get("job", ""), labels.get("instance", "")))
            if inst is not None:
                inst.scrape_error = str(target.get("lastError") or "")[:200]
