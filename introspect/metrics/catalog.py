"""The one catalog of exported metrics: Prometheus name, OpenTelemetry name, unit, type, labels.

The Prometheus collector, the OTLP instruments and the docs table (docs/metrics.md) are all
generated from `CATALOG`; tests fail when what is exported and what is listed here differ.

Families with `source="prometheus_client"` are prometheus_client's own collectors (process,
platform, gc), reused as they are on `/metrics`; the catalog gives their OpenTelemetry
semantic-convention equivalent (or None where no convention exists), which our OTLP exporter
produces itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from introspect.agent.collectors.gcstats import PAUSE_BUCKETS
from introspect.agent.collectors.loop import LAG_BUCKETS

MetricType = Literal["gauge", "counter", "histogram"]
# OpenTelemetry instrument: observable ones are read at export time; "histogram" is recorded.
OtelInstrument = Literal["gauge", "counter", "updowncounter", "histogram"]

COLLECT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                   1.0)


@dataclass(frozen=True)
class MetricSpec:
    prom: str  # Prometheus family name as exposed (counters with `_total`)
    otel: str | None  # OpenTelemetry instrument name; None: not exported over OTLP
    unit: str  # UCUM unit of the OpenTelemetry instrument
    type: MetricType  # Prometheus type
    help: str
    labels: tuple[str, ...] = ()  # Prometheus labels
    otel_instrument: OtelInstrument | None = None  # defaults from `type`
    otel_attributes: tuple[str, ...] | None = None  # OTel attribute per label; default = labels
    source: Literal["introspect", "prometheus_client"] = "introspect"
    buckets: tuple[float, ...] = ()

    @property
    def instrument(self) -> OtelInstrument:
        if self.otel_instrument is not None:
            return self.otel_instrument
        return {"gauge": "gauge", "counter": "counter", "histogram": "histogram"}[self.type]

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.otel_attributes if self.otel_attributes is not None else self.labels

    @property
    def family(self) -> str:
        """The family name prometheus_client's parser reports (counters without `_total`)."""
        if self.type == "counter" and self.prom.endswith("_total"):
            return self.prom[: -len("_total")]
        return self.prom


_spec = MetricSpec  # short, so each row of the table below stays readable


CATALOG: tuple[MetricSpec, ...] = (
    # --- asyncio tasks --------------------------------------------------------------------
    _spec("python_asyncio_tasks", "python.asyncio.tasks", "{task}", "gauge",
          "Live asyncio tasks by kind (coroutine module.qualname); the kinds beyond the limit "
          "count as 'other'; a kind once seen reports 0, never vanishes.", ("kind",),
          otel_instrument="updowncounter"),
    _spec("python_asyncio_tasks_created_total", "python.asyncio.tasks.created", "{task}",
          "counter", "asyncio tasks created, by kind.", ("kind",)),
    _spec("python_asyncio_tasks_finished_total", "python.asyncio.tasks.finished", "{task}",
          "counter", "asyncio tasks finished, by kind and outcome (ok, error, cancelled).",
          ("kind", "outcome")),
    _spec("python_asyncio_task_busy_seconds_total", "python.asyncio.task.busy_time", "s",
          "counter", "Time tasks of this kind ran on the event loop (statistical sampling).",
          ("kind",)),
    _spec("python_asyncio_task_held_seconds_total", "python.asyncio.task.held_time", "s",
          "counter", "Wall time tasks of this kind held the event loop, blocking calls "
          "included (sampled by the blocking watchdog).", ("kind",)),
    # --- the event loop -------------------------------------------------------------------
    _spec("python_asyncio_loop_lag_seconds", "python.asyncio.loop.lag", "s", "histogram",
          "Event loop lag: how late a periodic probe timer ran.", buckets=LAG_BUCKETS),
    _spec("python_asyncio_loop_ready_handles", "python.asyncio.loop.ready_handles", "{handle}",
          "gauge", "Callbacks ready to run: the loop's run-queue."),
    _spec("python_asyncio_loop_scheduled_handles", "python.asyncio.loop.scheduled_handles",
          "{handle}", "gauge", "Timers scheduled on the loop."),
    _spec("python_asyncio_loop_blocked_for_seconds", "python.asyncio.loop.blocked_for", "s",
          "gauge", "How long the loop has been unable to run, right now (0 when it runs)."),
    _spec("python_asyncio_loop_blocks_total", "python.asyncio.loop.blocks", "{block}",
          "counter", "Loop steps that held the loop longer than the block threshold."),
    _spec("python_asyncio_loop_blocked_seconds_total", "python.asyncio.loop.blocked_time", "s",
          "counter", "Time the loop was held by steps longer than the block threshold."),
    # --- queues and executors -------------------------------------------------------------
    _spec("python_queue_length", "python.queue.length", "{item}", "gauge",
          "Items in the queue (summed over live queues with the same name).",
          ("queue", "type"), otel_instrument="updowncounter"),
    _spec("python_queue_capacity", "python.queue.capacity", "{item}", "gauge",
          "Queue capacity (0 = unbounded).", ("queue", "type")),
    _spec("python_queue_blocked_putters", "python.queue.blocked_putters", "{waiter}", "gauge",
          "Producers blocked on a full queue.", ("queue", "type"),
          otel_instrument="updowncounter"),
    _spec("python_queue_owner_info", "python.queue.owner", "1", "gauge",
          "1 per task kind seen taking items from (role=consumer) or putting items into "
          "(role=producer) an asyncio queue; join it on queue and type. At most 3 kinds per "
          "queue and role, 200 series in all; off with INTROSPECT_QUEUE_OWNER_METRIC=0.",
          ("queue", "type", "role", "kind")),
    _spec("python_executor_queue_length", "python.executor.queue_length", "{work_item}",
          "gauge", "Work items waiting for a worker.", ("executor",),
          otel_instrument="updowncounter"),
    _spec("python_executor_workers", "python.executor.workers", "{worker}", "gauge",
          "Worker threads or processes started.", ("executor",),
          otel_instrument="updowncounter"),
    _spec("python_executor_max_workers", "python.executor.max_workers", "{worker}", "gauge",
          "Maximum workers of the executor.", ("executor",)),
    # --- threads, GC, exceptions ----------------------------------------------------------
    _spec("python_threads", "process.thread.count", "{thread}", "gauge",
          "Live Python threads.", otel_instrument="updowncounter"),
    _spec("python_gc_pause_seconds", "python.gc.pause.duration", "s", "histogram",
          "Garbage collection pause time, by generation.", ("generation",),
          otel_attributes=("cpython.gc.generation",), buckets=PAUSE_BUCKETS),
    _spec("python_exceptions_total", "python.exceptions", "{exception}", "counter",
          "Unhandled exceptions by source (task, thread, loop, callback) and type.",
          ("source", "type")),
    # --- the agent itself -----------------------------------------------------------------
    _spec("introspect_agent_collect_seconds", "introspect.agent.collect.duration", "s",
          "histogram", "Time the agent spent collecting metrics for one scrape or export.",
          buckets=COLLECT_BUCKETS),
    _spec("introspect_agent_errors_total", "introspect.agent.errors", "{error}", "counter",
          "Exceptions inside the agent's collectors (each contained), by collector.",
          ("collector",)),
    _spec("introspect_agent_clients", "introspect.agent.clients", "{client}", "gauge",
          "Clients connected to the agent (TUI, CLI, console).",
          otel_instrument="updowncounter"),
    _spec("introspect_agent_audit_total", "introspect.agent.audit", "{event}", "counter",
          "Audited client actions by action and outcome.", ("action", "outcome")),
    _spec("introspect_lint_findings_total", "introspect.lint.findings", "{finding}",
          "counter", "Runtime lint findings by lint (loop blocked, task never yields, busy "
          "loop, exception never retrieved, coroutine never awaited, task-kind leak, queue "
          "growing, executor saturated); every enabled lint reports, 0 included.", ("lint",)),
    _spec("introspect_agent_scrapes_total", None, "{scrape}", "counter",
          "Scrapes of /metrics by who served them: the app's event loop, or the agent's "
          "thread when the loop was blocked.", ("served_by",)),
    # --- prometheus_client's own collectors, reused ---------------------------------------
    _spec("process_cpu_seconds_total", "process.cpu.time", "s", "counter",
          "Total user and system CPU time spent in seconds.", source="prometheus_client"),
    _spec("process_resident_memory_bytes", "process.memory.usage", "By", "gauge",
          "Resident memory size in bytes.", otel_instrument="updowncounter",
          source="prometheus_client"),
    _spec("process_virtual_memory_bytes", "process.memory.virtual", "By", "gauge",
          "Virtual memory size in bytes.", otel_instrument="updowncounter",
          source="prometheus_client"),
    _spec("process_open_fds", "process.unix.file_descriptor.count", "{file_descriptor}",
          "gauge", "Number of open file descriptors.", otel_instrument="updowncounter",
          source="prometheus_client"),
    _spec("process_max_fds", None, "{file_descriptor}", "gauge",
          "Maximum number of open file descriptors.", source="prometheus_client"),
    _spec("process_start_time_seconds", None, "s", "gauge",
          "Start time of the process since unix epoch in seconds.", source="prometheus_client"),
    _spec("python_info", None, "1", "gauge", "Python platform information.",
          ("implementation", "major", "minor", "patchlevel", "version"),
          source="prometheus_client"),
    _spec("python_gc_collections_total", "cpython.gc.collections", "{collection}", "counter",
          "Number of times this generation was collected.", ("generation",),
          otel_attributes=("cpython.gc.generation",), source="prometheus_client"),
    _spec("python_gc_objects_collected_total", "cpython.gc.collected_objects", "{object}",
          "counter", "Objects collected during gc.", ("generation",),
          otel_attributes=("cpython.gc.generation",), source="prometheus_client"),
    _spec("python_gc_objects_uncollectable_total", "cpython.gc.uncollectable_objects",
          "{object}", "counter", "Uncollectable objects found during GC.", ("generation",),
          otel_attributes=("cpython.gc.generation",), source="prometheus_client"),
)

BY_PROM: dict[str, MetricSpec] = {spec.prom: spec for spec in CATALOG}
OURS: tuple[MetricSpec, ...] = tuple(s for s in CATALOG if s.source == "introspect")
OTEL: tuple[MetricSpec, ...] = tuple(s for s in CATALOG if s.otel is not None)


def spec(prom_name: str) -> MetricSpec:
    return BY_PROM[prom_name]
