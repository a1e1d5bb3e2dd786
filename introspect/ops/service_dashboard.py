"""The "Python service" dashboard: one service (or a few instances of it) in depth."""

from __future__ import annotations

from introspect.ops.grafana_gen import dashboard, m, quantile, rate, stat, table, timeseries

FINISHED = "python_asyncio_tasks_finished_total"
ERROR = 'outcome="error"'
UID = "introspect-python-service"


def _loop() -> list[dict]:
    lag = "python_asyncio_loop_lag_seconds"
    return [
        timeseries(
            "Event-loop lag", "How late the loop runs a callback that is ready: p50, p99 and "
            "the upper bound of the slowest histogram bucket (max). High lag delays every await.",
            "s", [(quantile(0.5, lag, "instance"), "{{instance}} p50"),
                  (quantile(0.99, lag, "instance"), "{{instance}} p99"),
                  (quantile(1, lag, "instance"), "{{instance}} max")], w=8),
        timeseries(
            "Run queue", "Callbacks ready to run now (the run-queue) and timers scheduled for "
            "later. A run-queue that stays high means the loop cannot keep up.",
            "short", [(m("python_asyncio_loop_ready_handles"), "{{instance}} ready"),
                      (m("python_asyncio_loop_scheduled_handles"), "{{instance}} scheduled")],
            w=8),
        timeseries(
            "Blocking events", "Steps that held the loop longer than INTROSPECT_BLOCK_THRESHOLD, "
            "per second. `introspect top` (Errors & events) shows each one with its stack.",
            "ops", [(f"sum by (instance) ({rate('python_asyncio_loop_blocks_total')})",
                     "{{instance}}")], w=4),
        timeseries(
            "Time the loop was blocked", "Share of wall time the loop spent inside blocking "
            "steps. Nothing else on this loop runs meanwhile.",
            "percentunit",
            [(f"sum by (instance) ({rate('python_asyncio_loop_blocked_seconds_total')})",
              "{{instance}}")], w=4),
    ]


def _tasks() -> list[dict]:
    return [
        timeseries(
            "Live tasks by kind", "asyncio tasks alive, by kind (coroutine module.qualname). A "
            "kind that drops to 0 and stays there is a worker group that vanished.",
            "short", [(f"sum by (kind) ({m('python_asyncio_tasks')})", "{{kind}}")]),
        timeseries(
            "Task creation rate by kind", "Tasks created per second, by kind.",
            "ops", [(f"sum by (kind) ({rate('python_asyncio_tasks_created_total')})",
                     "{{kind}}")]),
        timeseries(
            "Task finish rate by outcome", "Tasks finished per second: ok, error (ended with "
            "an exception: a crash report in `introspect top`, Errors & events) or cancelled.",
            "ops", [(f"sum by (outcome) ({rate('python_asyncio_tasks_finished_total')})",
                     "{{outcome}}")]),
        timeseries(
            "Task crashes by kind", "Tasks ending with an exception per second, by kind. A kind "
            "that keeps crashing is a crash loop.",
            "ops", [(f"sum by (kind) "
                     f"({rate(FINISHED, ERROR)})",
                     "{{kind}}")]),
        timeseries(
            "Loop time by task kind", "Share of wall time the loop spent running steps of "
            "each kind of task: who keeps the loop busy.",
            "percentunit", [(f"sum by (kind) ({rate('python_asyncio_task_busy_seconds_total')})",
                             "{{kind}}")], w=24, stack=True),
    ]


def _queues() -> list[dict]:
    consumers = m("python_queue_owner_info", 'role="consumer"')
    return [
        table(
            "Queues by backlog", "Every queue the agent found, largest backlog first (max "
            "and last length over the time range).",
            "short", f"sum by (instance, queue, type) ({m('python_queue_length')})",
            "length"),
        table(
            "Queue consumers", "The task kinds seen taking items from each asyncio queue, "
            "next to its backlog (python_queue_owner_info joined on queue and type): a "
            "backlog's consumer is where to look.",
            "short", f"sum by (instance, queue, type, kind) ({m('python_queue_length')} "
            f"* on (job, instance, queue, type) group_right "
            f"{consumers})",
            "length"),
        timeseries(
            "Queue length (top 10)", "Items waiting in the ten longest queues.",
            "short", [(f"topk(10, {m('python_queue_length')})",
                       "{{queue}} ({{type}}) {{instance}}")]),
        timeseries(
            "Queue saturation", "Length / capacity of bounded queues (capacity 0, unbounded, "
            "is left out). At 100% producers block or drop.",
            "percentunit", [(f"{m('python_queue_length')} / ({m('python_queue_capacity')} > 0)",
                             "{{queue}} ({{type}}) {{instance}}")]),
        timeseries(
            "Blocked producers", "Producers waiting to put into a full queue.",
            "short", [(m("python_queue_blocked_putters"), "{{queue}} ({{type}}) {{instance}}")],
            w=24),
    ]


def _executors_threads() -> list[dict]:
    return [
        timeseries(
            "Executor backlog", "Work items waiting for a worker in each executor/pool.",
            "short", [(m("python_executor_queue_length"), "{{executor}} {{instance}}")], w=8),
        timeseries(
            "Executor workers", "Workers running vs the executor's maximum. Workers at the "
            "maximum with a backlog means the executor is saturated.",
            "short", [(m("python_executor_workers"), "{{executor}} {{instance}} workers"),
                      (m("python_executor_max_workers"), "{{executor}} {{instance}} max")],
            w=8),
        timeseries(
            "Threads", "Threads alive in the process.",
            "short", [(m("python_threads"), "{{instance}}")], w=8),
    ]


def _gc_memory_cpu() -> list[dict]:
    pause = "python_gc_pause_seconds"
    return [
        timeseries(
            "GC collections by generation", "Garbage collections per second, by generation.",
            "ops", [(f"sum by (generation) ({rate('python_gc_collections_total')})",
                     "gen {{generation}}")], w=8),
        timeseries(
            "GC pause time", "Share of wall time paused in garbage collection, by generation.",
            "percentunit", [(f"sum by (generation) ({rate(pause + '_sum')})",
                             "gen {{generation}}")], w=8),
        timeseries(
            "GC pause p99", "p99 duration of one collection, by generation.",
            "s", [(quantile(0.99, pause, "generation"), "gen {{generation}}")], w=8),
        timeseries(
            "Resident memory", "Resident set size of each process.",
            "bytes", [(m("process_resident_memory_bytes"), "{{instance}}")], w=8),
        timeseries(
            "CPU", "CPU time per second (1 = one core busy).",
            "percentunit", [(rate("process_cpu_seconds_total"), "{{instance}}")], w=8),
        timeseries(
            "Open file descriptors", "Open file descriptors and the process limit.",
            "short", [(m("process_open_fds"), "{{instance}} open"),
                      (m("process_max_fds"), "{{instance}} limit")], w=8),
    ]


def _errors_agent() -> list[dict]:
    collect = "introspect_agent_collect_seconds"
    return [
        timeseries(
            "Exceptions by type", "Unhandled exceptions per second, by source (task, thread, "
            "loop, callback) and type. Each is a crash report in `introspect top`.",
            "ops", [(f"sum by (source, type) ({rate('python_exceptions_total')})",
                     "{{source}} {{type}}")]),
        timeseries(
            "Agent collection time", "p99 duration of one agent collection, and the share of "
            "wall time the agent spends collecting: its own cost.",
            "s", [(quantile(0.99, collect, "instance"), "{{instance}} p99"),
                  (f"sum by (instance) ({rate(collect + '_sum')})",
                   "{{instance}} seconds per second")]),
        timeseries(
            "Agent collector errors", "Errors raised by the agent's collectors, per second. "
            "A failing collector is isolated and counted, never fails the scrape.",
            "ops", [(f"sum by (collector) ({rate('introspect_agent_errors_total')})",
                     "{{collector}}")]),
        timeseries(
            "Attached clients", "TUI, console and record clients attached to the agent.",
            "short", [(m("introspect_agent_clients"), "{{instance}}")]),
    ]


def _overview() -> list[dict]:
    lag = "python_asyncio_loop_lag_seconds"
    return [
        stat("Targets up", "Instances answering Prometheus scrapes.", "short",
             f"sum({m('up')})"),
        stat("Live tasks", "asyncio tasks alive in the selected instances.", "short",
             f"sum({m('python_asyncio_tasks')})"),
        stat("Loop lag p99", "p99 event-loop lag, worst selected instance.", "s",
             f"max({quantile(0.99, lag, 'instance')})",
             thresholds=[(None, "green"), (0.1, "orange"), (0.25, "red")]),
        stat("Queued items", "Items waiting in all queues of the selected instances.", "short",
             f"sum({m('python_queue_length')})"),
        stat("Resident memory", "Resident memory of the selected instances.", "bytes",
             f"sum({m('process_resident_memory_bytes')})"),
        stat("Exceptions", "Unhandled exceptions per second.", "ops",
             f"sum({rate('python_exceptions_total')})",
             thresholds=[(None, "green"), (0.01, "red")]),
    ]


def build() -> dict:
    panels = (_overview() + _loop() + _tasks() + _queues() + _executors_threads()
              + _gc_memory_cpu() + _errors_agent())
    return dashboard(
        UID, "Python service (introspect)",
        "One Python service observed by the introspect agent: event loop, tasks by kind, "
        "queues, executors, threads, GC, memory, CPU, file descriptors, exceptions and the "
        "agent's own cost.",
        panels)
