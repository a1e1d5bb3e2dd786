"""The "Fleet" dashboard: every instance at once, worst first, to find the one to open."""

from __future__ import annotations

from introspect.ops.grafana_gen import dashboard, m, quantile, rate, stat, table, timeseries

FINISHED = "python_asyncio_tasks_finished_total"
ERROR = 'outcome="error"'
UID = "introspect-fleet"


def build() -> dict:
    lag = "python_asyncio_loop_lag_seconds"
    lag_p99 = quantile(0.99, lag, "job, instance")
    crashes = (f"sum by (job, instance, kind) "
               f"({rate(FINISHED, ERROR)})")
    vanished = (f"{m('python_asyncio_tasks')} == 0\n"
                f"and max_over_time({m('python_asyncio_tasks')}[1h]) > 0")
    growth = (f"deriv({m('process_resident_memory_bytes')}[30m]) * 3600\n"
              f"  / {m('process_resident_memory_bytes')}")
    panels = [
        stat("Instances up", "Instances answering Prometheus scrapes.", "short",
             f"sum({m('up')})", w=6),
        stat("Instances down", "Instances Prometheus cannot scrape.", "short",
             f"sum(1 - {m('up')})", w=6, thresholds=[(None, "green"), (1, "red")]),
        stat("Live tasks", "asyncio tasks alive across the fleet.", "short",
             f"sum({m('python_asyncio_tasks')})", w=6),
        stat("Task crashes", "Tasks ending with an exception per second, fleet-wide.", "ops",
             f"sum({rate(FINISHED, ERROR)})", w=6,
             thresholds=[(None, "green"), (0.001, "red")]),
        table("Worst event-loop lag", "p99 event-loop lag per instance, worst first.", "s",
              lag_p99, "p99 lag"),
        timeseries("Event-loop lag p99 (worst 10)", "The ten instances with the highest p99 "
                   "event-loop lag.", "s", [(f"topk(10, {lag_p99})", "{{job}} {{instance}}")]),
        table("Largest queue backlogs", "The longest queues of the fleet, largest first.",
              "short", f"topk(20, {m('python_queue_length')})", "length"),
        table("Crash loops", "Task kinds ending with an exception, per instance: errors per "
              "second, worst first. A kind that keeps crashing will vanish when its "
              "supervisor gives up.", "ops", crashes, "errors/s"),
        table("Vanished task groups", "Task kinds with no live task now that had some in the "
              "last hour (0 now; empty when every group is alive).", "short", vanished,
              "live tasks"),
        table("Memory growth", "Resident memory growth per hour relative to its size, trend "
              "over 30 minutes, fastest first.", "percentunit", growth, "growth/h"),
        timeseries("Resident memory (largest 10)", "Resident memory of the ten largest "
                   "instances.", "bytes",
                   [(f"topk(10, {m('process_resident_memory_bytes')})",
                     "{{job}} {{instance}}")]),
        timeseries("Blocked loop time", "Share of wall time each instance's loop was held "
                   "by blocking steps.", "percentunit",
                   [(f"sum by (job, instance) "
                     f"({rate('python_asyncio_loop_blocked_seconds_total')})",
                     "{{job}} {{instance}}")]),
        timeseries("Exceptions", "Unhandled exceptions per second, per instance.", "ops",
                   [(f"sum by (job, instance) ({rate('python_exceptions_total')})",
                     "{{job}} {{instance}}")], w=24),
    ]
    return dashboard(
        UID, "Python fleet (introspect)",
        "Every Python instance observed by introspect, worst first: event-loop lag, queue "
        "backlogs, crash loops, vanished task groups, memory growth, exceptions.",
        panels)
