"""The metrics-only page of one instance, from PromQL: what an SRE would look at before (or
instead of) attaching — tasks by kind, crashes, queues, loop lag, GC, memory, exceptions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from introspect.fleet.api import PrometheusAPI

ROWS = 15  # per section


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def instance_selector(job: str, instance: str, pid: str = "", worker: str = "") -> str:
    parts = [f'job="{_quote(job)}"', f'instance="{_quote(instance)}"']
    parts += [f'{name}="{_quote(v)}"' for name, v in (("pid", pid), ("worker", worker)) if v]
    return ", ".join(parts)


def detail_queries(sel: str) -> dict[str, tuple[str, str]]:
    """Section row -> (query, label whose value names the row ('' = one value))."""
    n = ROWS
    lag = f"rate(python_asyncio_loop_lag_seconds_bucket{{{sel}}}[5m])"
    return {
        "up": (f"up{{{sel}}}", ""),
        "lag_p50": (f"histogram_quantile(0.5, sum by (le) ({lag}))", ""),
        "lag_p99": (f"histogram_quantile(0.99, sum by (le) ({lag}))", ""),
        "blocked": (f"300 * sum(rate(python_asyncio_loop_blocked_seconds_total{{{sel}}}[5m]))",
                    ""),
        "ready": (f"sum(python_asyncio_loop_ready_handles{{{sel}}})", ""),
        "tasks": (f"topk({n}, python_asyncio_tasks{{{sel}}})", "kind"),
        "crashes": (f"topk({n}, 900 * rate(python_asyncio_tasks_finished_total"
                    f"{{outcome=\"error\", {sel}}}[15m]) > 0)", "kind"),
        "queues": (f"topk({n}, python_queue_length{{{sel}}})", "queue"),
        "queue_growth": (f"topk({n}, 600 * deriv(python_queue_length{{{sel}}}[10m]))", "queue"),
        "executors": (f"topk({n}, python_executor_queue_length{{{sel}}})", "executor"),
        "gc_collections": (f"60 * rate(python_gc_collections_total{{{sel}}}[5m])",
                           "generation"),
        "gc_pause": (f"sum(rate(python_gc_pause_seconds_sum{{{sel}}}[5m]))", ""),
        "rss": (f"max(process_resident_memory_bytes{{{sel}}})", ""),
        "memory_growth": (f"max(3600 * deriv(process_resident_memory_bytes{{{sel}}}[30m])"
                          f" / process_resident_memory_bytes{{{sel}}})", ""),
        "threads": (f"max(python_threads{{{sel}}})", ""),
        "fds": (f"max(process_open_fds{{{sel}}})", ""),
        "exceptions": (f"topk({n}, sum by (source, type) (increase(python_exceptions_total"
                       f"{{{sel}}}[10m])) > 0)", "type"),
    }


@dataclass
class InstanceDetail:
    selector: str
    values: dict[str, float | None] = field(default_factory=dict)
    rows: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # largest first


def fetch_detail(api: PrometheusAPI, sel: str) -> InstanceDetail:
    queries = detail_queries(sel)
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="fleet-detail") as pool:
        answers: dict[str, list[dict[str, Any]]] = {
            name: f.result() for name, f in
            {name: pool.submit(api.query, promql) for name, (promql, _) in queries.items()
             }.items()}
    detail = InstanceDetail(sel)
    for name, (_promql, label) in queries.items():
        result = answers[name]
        if not label:
            detail.values[name] = _value(result[0]) if result else None
            continue
        rows = []
        for series in result:
            value = _value(series)
            if value is not None:
                metric = series.get("metric") or {}
                key = metric.get(label, "")
                if name == "exceptions":
                    key = f"{metric.get('source', '')}: {key}"
                rows.append((key, value))
        detail.rows[name] = sorted(rows, key=lambda r: (-r[1], r[0]))
    return detail


def _value(series: dict[str, Any]) -> float | None:
    try:
        return float((series.get("value") or [None, None])[1])
    except (TypeError, ValueError):
        return None
