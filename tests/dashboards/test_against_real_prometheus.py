"""End to end: the demo service under `introspect run --metrics-port`, scraped every second by a
real Prometheus with the generated rules loaded (every `for:` scaled by FOR_SCALE).

Checks that every metric family of PRODUCT.md is exported, every dashboard panel and variable
query returns data, every alert's input series exist and its expression evaluates, and the
demo's failure stories put their alerts in pending or firing state.

How dashboard variables are replaced (introspect.ops.grafana_gen.render_expr):
`$job` -> the demo's scrape job (`introspect-demo`), `$instance` -> `.+` (Grafana's "All"),
`$__rate_interval` -> `1m`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from dashboards.generate import render_rules
from introspect.ops import fleet_dashboard, service_dashboard
from introspect.ops.alerts_gen import RuleConfig, alerts
from introspect.ops.grafana_gen import panel_queries, render_expr, variable_queries
from tests.support.prometheus_server import PrometheusServer, free_port, wait_for

JOB = "introspect-demo"
SPEED = "10"  # one demo cycle (every story) every 6 s
FOR_SCALE = 0.05  # for: 5m -> 15s, 10m -> 30s, 30m -> 90s
DEADLINE = 120.0
COMPONENT = "comments_worker"
WORKER_KIND = f"introspect.demo.comments.{COMPONENT}"

# PRODUCT.md's metric catalog (histograms by their _bucket series) + prometheus_client's own.
METRIC_FAMILIES = [
    "python_asyncio_tasks", "python_asyncio_tasks_created_total",
    "python_asyncio_tasks_finished_total", "python_asyncio_task_busy_seconds_total",
    "python_asyncio_loop_lag_seconds_bucket", "python_asyncio_loop_ready_handles",
    "python_asyncio_loop_scheduled_handles", "python_asyncio_loop_blocks_total",
    "python_asyncio_loop_blocked_seconds_total", "python_queue_length", "python_queue_capacity",
    "python_queue_blocked_putters", "python_executor_queue_length", "python_executor_workers",
    "python_executor_max_workers", "python_threads", "python_gc_pause_seconds_bucket",
    "python_exceptions_total", "introspect_agent_collect_seconds_bucket",
    "introspect_agent_errors_total", "introspect_agent_clients", "process_cpu_seconds_total",
    "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
    "python_gc_collections_total", "python_gc_objects_collected_total", "python_info",
]

# Families with no series while the service is healthy: the exporter emits
# introspect_agent_errors_total{collector} only once a collector has failed (it does not
# pre-export 0 per collector). Queries over them may return nothing; remove a name from here
# when the exporter pre-exports it.
ABSENT_WHEN_HEALTHY = {"introspect_agent_errors_total"}

# The series each alert reads (checked below to appear in the alert's expression).
ALERT_INPUTS = {
    "IntrospectTargetDown": ["up"],
    "PythonEventLoopLagHigh": ["instance:python_asyncio_loop_lag_seconds:p99_rate5m"],
    "PythonEventLoopBlocked": ["instance:python_asyncio_loop_blocked_seconds:increase5m"],
    "PythonQueueBacklogGrowing": ["python_queue_length"],
    "PythonQueueSaturated": ["python_queue_length", "python_queue_capacity"],
    "PythonTaskGroupVanished": ["python_asyncio_tasks"],
    "PythonTaskCrashLoop": ["instance_kind:python_asyncio_tasks_errors:increase15m"],
    "PythonTaskLeak": ["python_asyncio_tasks"],
    "PythonUnhandledExceptions": ["python_exceptions_total"],
    "PythonGCPauseHigh": ["instance:python_gc_pause_seconds:ratio_rate5m"],
    "PythonMemoryGrowing": ["instance:process_resident_memory_bytes:growth_ratio_per_hour",
                            "process_resident_memory_bytes"],
    "PythonFileDescriptorsExhausted": ["process_open_fds", "process_max_fds", "python_info"],
    "PythonExecutorSaturated": ["python_executor_queue_length", "python_executor_workers",
                                "python_executor_max_workers"],
}

# The demo's stories (introspect/demo/README.md) and the alert each must raise, with labels.
EXPECTED_ALERTS = {
    "PythonTaskCrashLoop": {"kind": WORKER_KIND},  # 4 crashes per cycle
    "PythonTaskGroupVanished": {"kind": WORKER_KIND},  # supervisor gives up: 0 workers
    "PythonQueueBacklogGrowing": {},  # CommentsService.inbox / MediaGateway.inbox grow
    "PythonEventLoopBlocked": {},  # 0.3 s sync_db_query blocks and one 1.5 s block per cycle
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo under the agent, with /metrics on a free loopback port."""
    tmp = tmp_path_factory.mktemp("demo")
    port = free_port()
    log_path = tmp / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "introspect", "run", "--metrics-port", str(port), "--",
             sys.executable, "-m", "introspect.demo", "--speed", SPEED],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )

    def log_tail() -> str:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])

    def metrics_answer() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"demo exited with {proc.returncode}:\n{log_tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return resp.status == 200

    try:
        try:
            wait_for(metrics_answer, timeout=30, message="the demo's /metrics")
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n--- demo log ---\n{log_tail()}")
        yield f"127.0.0.1:{port}", log_tail
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture(scope="module")
def prom(demo, tmp_path_factory):
    address, _ = demo
    rules = tmp_path_factory.mktemp("rules") / "introspect.rules.yml"
    rules.write_text(render_rules(RuleConfig(for_scale=FOR_SCALE)))
    with PrometheusServer({JOB: [address]}, scrape_interval="1s", evaluation_interval="1s",
                          rule_files=[rules]) as server:
        server.wait_for(lambda: server.query(f'up{{job="{JOB}"}} == 1'), timeout=30,
                        message="Prometheus scraped the demo")
        yield server


def has_data(prom: PrometheusServer, promql: str) -> bool:
    return bool(prom.query(promql))


def poll_until_all_have_data(prom: PrometheusServer, queries: dict[str, str], what: str,
                             demo_log) -> None:
    """Poll every query until each has returned data at least once (stories come and go)."""
    missing = dict(queries)

    def all_seen() -> bool:
        for key, promql in list(missing.items()):
            if has_data(prom, promql):
                del missing[key]
        return not missing

    try:
        prom.wait_for(all_seen, timeout=DEADLINE, interval=0.5, message=what)
    except TimeoutError as exc:
        listing = "\n".join(f"  {k}: {q}" for k, q in missing.items())
        pytest.fail(f"{exc}\nno data for:\n{listing}\n--- demo log ---\n{demo_log()}")


@pytest.mark.timeout(300)
def test_every_metric_family_is_exported(prom, demo):
    queries = {name: f'{name}{{job="{JOB}"}}' for name in METRIC_FAMILIES
               if name not in ABSENT_WHEN_HEALTHY}
    poll_until_all_have_data(prom, queries, "every metric family exported", demo[1])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("board", [service_dashboard.build(), fleet_dashboard.build()],
                         ids=["service", "fleet"])
def test_every_dashboard_query_returns_data(prom, demo, board):
    queries = {f"{title} {ref}": render_expr(expr, job=JOB)
               for title, ref, expr in panel_queries(board)
               if not any(name in expr for name in ABSENT_WHEN_HEALTHY)}
    queries |= {f"variable {name}": render_expr(q, job=JOB) for name, q in variable_queries(board)}
    poll_until_all_have_data(prom, queries, f"{board['uid']} panels with data", demo[1])


@pytest.mark.timeout(300)
def test_every_alert_has_its_inputs_and_evaluates(prom, demo):
    rules = {a.name: a.expr for a in alerts(RuleConfig(for_scale=FOR_SCALE))}
    assert set(ALERT_INPUTS) == set(rules)
    for name, inputs in ALERT_INPUTS.items():
        assert all(series in rules[name] for series in inputs), name
        prom.query(rules[name])  # raises PrometheusError if Prometheus rejects it
    queries = {f"{name} <- {series}": f'{series}{{job="{JOB}"}}'
               for name, inputs in ALERT_INPUTS.items() for series in inputs}
    poll_until_all_have_data(prom, queries, "every alert input has data", demo[1])


@pytest.mark.timeout(300)
def test_demo_stories_raise_their_alerts(prom, demo):
    """ALERTS over the last minutes: pending or firing at any evaluation counts."""
    queries = {
        name: "present_over_time(ALERTS{" + ", ".join(
            [f'alertname="{name}"', f'job="{JOB}"', 'alertstate=~"pending|firing"']
            + [f'{k}="{v}"' for k, v in labels.items()]) + "}[10m])"
        for name, labels in EXPECTED_ALERTS.items()
    }
    poll_until_all_have_data(prom, queries, "the demo's alerts pending or firing", demo[1])


def test_alert_names_in_expectations_exist():
    names = {a.name for a in alerts(RuleConfig())}
    assert set(EXPECTED_ALERTS) <= names


def test_dashboards_use_the_documented_substitutions():
    expr = 'rate(x{job=~"$job", instance=~"$instance"}[$__rate_interval])'
    assert render_expr(expr, job=JOB) == 'rate(x{job=~"introspect-demo", instance=~".+"}[1m])'
