"""Prometheus recording and alerting rules for services running the introspect agent.

Edit THRESHOLDS (or pass `--set NAME=VALUE` to `dashboards/generate.py`) to tune the rules,
then regenerate. Alert names are a product contract (PRODUCT.md): never rename them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# name -> (default, what it means). Values are numbers, or Prometheus durations as strings.
THRESHOLDS: dict[str, tuple[float | str, str]] = {
    "loop_lag_p99_seconds": (0.25, "p99 event-loop lag over 5m above which the loop is slow"),
    "loop_blocked_seconds_per_5m": (
        1.0,
        "seconds the loop was held by steps past INTROSPECT_BLOCK_THRESHOLD, per 5m",
    ),
    "queue_backlog_min_items": (100, "a growing queue alerts only above this many items"),
    "queue_saturation_ratio": (0.9, "length/capacity of a bounded queue that counts as full"),
    "task_group_lookback": ("1h", "how long a task kind that had live tasks is remembered"),
    "task_group_kinds": (".+", "regex of task kinds watched for vanishing (not 'other')"),
    "crash_loop_errors_per_15m": (3, "tasks of one kind ending with an exception, per 15m"),
    "task_leak_min_tasks": (1000, "live tasks of one kind above which steady growth is a leak"),
    "exceptions_per_10m": (5, "unhandled exceptions of one type per 10m"),
    "gc_pause_ratio": (0.05, "share of wall time spent paused in garbage collection"),
    "memory_growth_ratio_per_hour": (0.1, "RSS growth per hour, relative to current RSS"),
    "memory_min_bytes": (134217728, "RSS below which memory growth is not alerted (128 MiB)"),
    "fd_usage_ratio": (0.9, "open file descriptors / the process limit"),
    "executor_queue_min_items": (1, "average items waiting for a saturated executor over 5m"),
}

RUNBOOK_URL = "https://github.com/introspect-dev/introspect/blob/main/docs/runbook.md"


@dataclass
class RuleConfig:
    """Everything that changes the generated rules."""

    selector: str = ""  # extra label matchers on every series, e.g. 'job=~"api|worker"'
    runbook_url: str = RUNBOOK_URL
    for_scale: float = 1.0  # multiply every `for:` (tests use small values)
    overrides: dict[str, float | str] = field(default_factory=dict)

    def t(self, name: str) -> float | str:
        if name not in THRESHOLDS:
            raise KeyError(f"unknown threshold {name!r}; known: {', '.join(THRESHOLDS)}")
        return self.overrides.get(name, THRESHOLDS[name][0])

    def sel(self, metric: str, *matchers: str) -> str:
        """`metric{matchers..., selector}` (no braces when there is nothing to match)."""
        parts = [m for m in (*matchers, self.selector) if m]
        return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def parse_override(text: str) -> tuple[str, float | str]:
    """`NAME=VALUE` from the command line: numbers become floats/ints, the rest stay text."""
    name, sep, raw = text.partition("=")
    if not sep or name not in THRESHOLDS:
        raise ValueError(f"expected NAME=VALUE with NAME one of: {', '.join(THRESHOLDS)}")
    if isinstance(THRESHOLDS[name][0], str):
        return name, raw
    number = float(raw)
    return name, int(number) if number.is_integer() else number


def duration(seconds: float) -> str:
    """Seconds as the shortest Prometheus duration: 300 -> '5m', 30 -> '30s'."""
    seconds = max(1, round(seconds))
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def num(value: float | str) -> str:
    """A threshold as PromQL/description text: 0.25 -> '0.25', 3.0 -> '3'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def recording_rules(c: RuleConfig) -> list[dict]:
    """Series reused by alerts, dashboards and ad-hoc queries (level:metric:operation)."""
    errors = c.sel("python_asyncio_tasks_finished_total", 'outcome="error"')
    return [
        {
            "record": "instance:python_asyncio_loop_lag_seconds:p99_rate5m",
            "expr": "histogram_quantile(0.99,\n  sum by (job, instance, le) ("
            f"rate({c.sel('python_asyncio_loop_lag_seconds_bucket')}[5m]))\n)",
        },
        {
            "record": "instance:python_asyncio_loop_blocked_seconds:increase5m",
            "expr": "sum by (job, instance) ("
            f"increase({c.sel('python_asyncio_loop_blocked_seconds_total')}[5m]))",
        },
        {
            "record": "instance_kind:python_asyncio_tasks_errors:increase15m",
            "expr": f"sum by (job, instance, kind) (increase({errors}[15m]))",
        },
        {
            "record": "instance:python_gc_pause_seconds:ratio_rate5m",
            "expr": "sum by (job, instance) ("
            f"rate({c.sel('python_gc_pause_seconds_sum')}[5m]))",
        },
        {
            "record": "instance:process_resident_memory_bytes:growth_ratio_per_hour",
            "expr": f"deriv({c.sel('process_resident_memory_bytes')}[30m]) * 3600\n"
            f"  / {c.sel('process_resident_memory_bytes')}\n"
            f"and on (job, instance) {c.sel('python_info')}",
        },
    ]


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str  # critical | warning | info
    for_minutes: int
    expr: str
    summary: str  # static sentence
    description: str  # Go template over $labels / $value


def alerts(c: RuleConfig) -> list[Alert]:
    s, t = c.sel, c.t
    where = "{{ $labels.job }}/{{ $labels.instance }}"
    kinds = f'kind=~"{t("task_group_kinds")}", kind!="other"'
    crashed = s("python_asyncio_tasks_finished_total", kinds, 'outcome="error"')
    returned = s("python_asyncio_tasks_finished_total", kinds, 'outcome="ok"')
    return [
        Alert(
            "IntrospectTargetDown", "critical", 5,
            f"{s('up')} == 0",
            "A service scraped for introspect metrics is down.",
            f"Prometheus cannot scrape {where}: the process is gone, or its event loop is "
            "blocked so hard that /metrics cannot answer.",
        ),
        Alert(
            "PythonEventLoopLagHigh", "warning", 10,
            "instance:python_asyncio_loop_lag_seconds:p99_rate5m"
            f" > {num(t('loop_lag_p99_seconds'))}",
            "The event loop runs ready callbacks late.",
            f"p99 event-loop lag of {where} is {{{{ $value | humanizeDuration }}}} over the "
            "last 5 minutes: every await on this loop waits at least that long.",
        ),
        Alert(
            "PythonEventLoopBlocked", "warning", 5,
            "instance:python_asyncio_loop_blocked_seconds:increase5m"
            f" > {num(t('loop_blocked_seconds_per_5m'))}",
            "Code keeps blocking the event loop.",
            f"The event loop of {where} was held by blocking steps for "
            "{{ $value | humanizeDuration }} in the last 5 minutes.",
        ),
        Alert(
            "PythonQueueBacklogGrowing", "warning", 10,
            f"{s('python_queue_length')} > {num(t('queue_backlog_min_items'))}\n"
            f"and deriv({s('python_queue_length')}[10m]) > 0",
            "A queue keeps growing: its consumers do not keep up.",
            "Queue {{ $labels.queue }} ({{ $labels.type }}) on "
            f"{where} holds {{{{ $value }}}} items and is still growing.",
        ),
        Alert(
            "PythonQueueSaturated", "critical", 5,
            f"{s('python_queue_length')}\n  / ({s('python_queue_capacity')} > 0)\n"
            f">= {num(t('queue_saturation_ratio'))}",
            "A bounded queue is full: producers block or drop.",
            "Queue {{ $labels.queue }} ({{ $labels.type }}) on "
            f"{where} is {{{{ $value | humanizePercentage }}}} full.",
        ),
        Alert(
            "PythonTaskGroupVanished", "critical", 5,
            f"{s('python_asyncio_tasks', kinds)} == 0\n"
            "and on (job, instance, kind) (\n"
            f"  max_over_time({s('python_asyncio_tasks', kinds)}[{t('task_group_lookback')}])"
            " > 0\n"
            "  or on (job, instance, kind)\n"
            "  sum by (job, instance, kind) ("
            f"{crashed}) > 0\n"
            ")\n"
            "unless on (job, instance, kind)\n"
            "sum by (job, instance, kind) ("
            f"{returned}) > 0",
            "A kind of task that was running has no live task left.",
            "No task of kind {{ $labels.kind }} is alive on "
            f"{where}, though some were in the last {t('task_group_lookback')} or ended "
            "with an exception. Work done by this group has stopped while the rest of the "
            "service looks fine.",
        ),
        Alert(
            "PythonTaskCrashLoop", "warning", 5,
            "instance_kind:python_asyncio_tasks_errors:increase15m"
            f" >= {num(t('crash_loop_errors_per_15m'))}",
            "Tasks of one kind keep ending with an exception.",
            "{{ $value | humanize }} tasks of kind {{ $labels.kind }} on "
            f"{where} ended with an exception in the last 15 minutes.",
        ),
        Alert(
            "PythonTaskLeak", "warning", 30,
            f"{s('python_asyncio_tasks')} > {num(t('task_leak_min_tasks'))}\n"
            f"and deriv({s('python_asyncio_tasks')}[30m]) > 0",
            "Live tasks of one kind keep piling up.",
            "{{ $value }} tasks of kind {{ $labels.kind }} are alive on "
            f"{where} and their number keeps growing.",
        ),
        Alert(
            "PythonUnhandledExceptions", "warning", 15,
            "sum by (job, instance, source, type) ("
            f"increase({s('python_exceptions_total')}[10m]))\n"
            f"> {num(t('exceptions_per_10m'))}",
            "Exceptions keep reaching the top of tasks, threads or callbacks.",
            "{{ $value | humanize }} unhandled {{ $labels.type }} exceptions from "
            f"{{{{ $labels.source }}}} code on {where} in the last 10 minutes.",
        ),
        Alert(
            "PythonGCPauseHigh", "warning", 10,
            f"instance:python_gc_pause_seconds:ratio_rate5m > {num(t('gc_pause_ratio'))}",
            "Garbage collection pauses take a large share of the time.",
            f"{where} spent {{{{ $value | humanizePercentage }}}} of the last 5 minutes "
            "paused in garbage collection.",
        ),
        Alert(
            "PythonMemoryGrowing", "warning", 30,
            "instance:process_resident_memory_bytes:growth_ratio_per_hour"
            f" > {num(t('memory_growth_ratio_per_hour'))}\n"
            f"and on (job, instance) {s('process_resident_memory_bytes')}"
            f" > {num(t('memory_min_bytes'))}",
            "Resident memory keeps growing.",
            f"Resident memory of {where} grows by {{{{ $value | humanizePercentage }}}} "
            "per hour (trend over 30 minutes).",
        ),
        Alert(
            "PythonFileDescriptorsExhausted", "critical", 5,
            f"{s('process_open_fds')} / {s('process_max_fds')}"
            f" > {num(t('fd_usage_ratio'))}\n"
            f"and on (job, instance) {s('python_info')}",
            "The process is running out of file descriptors.",
            f"{where} uses {{{{ $value | humanizePercentage }}}} of its file descriptors.",
        ),
        Alert(
            "PythonExecutorSaturated", "warning", 10,
            f"avg_over_time({s('python_executor_queue_length')}[5m])"
            f" >= {num(t('executor_queue_min_items'))}\n"
            f"and on (job, instance, executor) {s('python_executor_workers')}\n"
            f"  >= {s('python_executor_max_workers')}",
            "An executor has all its workers busy and work waiting.",
            "Executor {{ $labels.executor }} on "
            f"{where} runs all its workers and {{{{ $value | humanize }}}} items wait on "
            "average.",
        ),
    ]


def alert_rule(a: Alert, c: RuleConfig) -> dict:
    anchor = a.name.lower()
    return {
        "alert": a.name,
        "expr": a.expr,
        "for": duration(a.for_minutes * 60 * c.for_scale),
        "labels": {"severity": a.severity},
        "annotations": {
            "summary": a.summary,
            "description": a.description,
            "runbook_url": f"{c.runbook_url}#{anchor}",
        },
    }


def rule_groups(c: RuleConfig) -> dict:
    # One group: rules of a group run in order, so every alert sees the recording rules of the
    # same evaluation. Across groups the order is not defined (promtool's tests then flake).
    rules = recording_rules(c) + [alert_rule(a, c) for a in alerts(c)]
    return {"groups": [{"name": "introspect", "rules": rules}]}
