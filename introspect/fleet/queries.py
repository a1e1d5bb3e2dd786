"""The PromQL of one fleet refresh: one bounded instant query per signal, every one grouped by
the instance identity and cut to the `limit` worst with `topk`, so the answers stay small
however large the fleet is. Thresholds are the alert rules' (dashboards/alerts_gen.py), so a
signal scores 1 where its alert would start to fire."""

from __future__ import annotations

import re
from dataclasses import dataclass

from introspect.errors import UserError

# An instance is (job, instance) plus these labels where the series carry them: several
# workers behind one scrape target (multiprocess servers) stay apart.
IDENTITY_LABELS = ("job", "instance", "pid", "worker")
BY = "job, instance, pid, worker"

# The alert rules' defaults (dashboards/alerts_gen.py THRESHOLDS): the unit of each signal.
LAG_P99_SECONDS = 0.25
BLOCKED_SECONDS_PER_5M = 1.0
BACKLOG_ITEMS_PER_10M = 100.0
CRASHES_PER_15M = 3.0
MEMORY_GROWTH_PER_HOUR = 0.1
MEMORY_MIN_BYTES = 128 * 1024 * 1024

_MATCHERS = re.compile(r'^\s*\{(?P<inner>.*)\}\s*$', re.S)


def parse_selector(text: str | None) -> str:
    """`{job="api"}` (braces optional) -> `job="api"`: matchers to add to every series."""
    if not text or not text.strip():
        return ""
    match = _MATCHERS.match(text)
    inner = (match.group("inner") if match else text).strip().rstrip(",")
    if not inner or "{" in inner or "}" in inner or "=" not in inner:
        raise UserError(f"--selector {text!r}: expected label matchers such as "
                        "'{job=\"api\"}' or '{job=~\"api|worker\", env=\"prod\"}'")
    return inner


@dataclass(frozen=True)
class FleetQueries:
    """Builds the refresh's queries for one selector and bound."""

    selector: str = ""  # matchers without braces, from parse_selector
    limit: int = 500

    def sel(self, metric: str, *matchers: str) -> str:
        parts = [m for m in (*matchers, self.selector) if m]
        return f"{metric}{{{', '.join(parts)}}}" if parts else metric

    def instant(self) -> dict[str, str]:
        """Signal name -> instant query. Values are in the signal's own unit."""
        n, s = self.limit, self.sel
        errors = s("python_asyncio_tasks_finished_total", 'outcome="error"')
        kinds = s("python_asyncio_tasks", 'kind!="other"')
        return {
            # Scrape health: bottomk keeps the down ones (0) when the fleet is over the limit.
            "up": f"bottomk({n}, {s('up')})",
            "lag_p99": f"topk({n}, histogram_quantile(0.99, sum by ({BY}, le) "
                       f"(rate({s('python_asyncio_loop_lag_seconds_bucket')}[5m]))))",
            # Seconds per 5 minutes the loop was held past the block threshold.
            "blocked": f"topk({n}, 300 * sum by ({BY}) "
                       f"(rate({s('python_asyncio_loop_blocked_seconds_total')}[5m])))",
            # Items per 10 minutes the fastest-growing queue gains (trend over 10m).
            "backlog_growth": f"topk({n}, 600 * max by ({BY}) "
                              f"(deriv({s('python_queue_length')}[10m])))",
            "backlog": f"topk({n}, max by ({BY}) ({s('python_queue_length')}))",
            # Tasks of the worst kind ending with an exception, per 15 minutes.
            "crashes": f"topk({n}, 900 * max by ({BY}) (rate("
                       f"{errors}[15m])))",
            # Kinds that had live tasks in the last hour and have none now.
            "vanished": f"topk({n}, count by ({BY}) ("
                        f"{kinds} == 0 and max_over_time({kinds}[1h]) > 0))",
            # RSS growth per hour relative to RSS (trend over 30m), as PythonMemoryGrowing.
            "memory_growth": f"topk({n}, 3600 * deriv({s('process_resident_memory_bytes')}[30m])"
                             f" / {s('process_resident_memory_bytes')})",
            "rss": f"topk({n}, {s('process_resident_memory_bytes')})",
            "tasks": f"topk({n}, sum by ({BY}) ({s('python_asyncio_tasks')}))",
        }

    def sparklines(self) -> dict[str, str]:
        """Signal name -> range query for the last hour's sparklines (worst `limit` only),
        evaluated every 5 minutes over the 5 minutes before: one point per sparkline cell."""
        n, s = self.limit, self.sel
        return {
            "lag_p99": f"topk({n}, histogram_quantile(0.99, sum by ({BY}, le) "
                       f"(rate({s('python_asyncio_loop_lag_seconds_bucket')}[5m]))))",
            "backlog": f"topk({n}, max by ({BY}) "
                       f"(max_over_time({s('python_queue_length')}[5m])))",
        }


def identity(labels: dict[str, str]) -> tuple[str, str, str, str]:
    """The row key of a series: (job, instance, pid, worker), '' for an absent label."""
    return tuple(labels.get(name, "") for name in IDENTITY_LABELS)  # type: ignore[return-value]
