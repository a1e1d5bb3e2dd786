"""A real Prometheus scrapes the demo service run under `introspect run --metrics-port`; PromQL
over the HTTP API finds what the demo is known to do (introspect/demo/README.md).

The demo at speed 10 runs a 6-second cycle: the inbox spike, the comments crash, GC churn and
the unhandled exceptions all happen within the first cycle or two.
"""

from __future__ import annotations

import sys

from tests.metrics.support import REPO, AgentProcess, metrics_url
from tests.support.prometheus_server import PrometheusServer

DEMO = "introspect.demo"


def _values(prom: PrometheusServer, promql: str) -> dict[str, float]:
    """Instant query → {label-set text: value}."""
    return {str(r["metric"]): float(r["value"][1]) for r in prom.query(promql)}


def test_prometheus_scrapes_the_demo_and_promql_finds_every_story() -> None:
    argv = [sys.executable, "-m", "introspect", "run", "--metrics-port", "0", "--",
            sys.executable, "-m", DEMO, "--speed", "10", "--duration", "60"]
    with AgentProcess(argv, cwd=str(REPO)) as demo:
        url = metrics_url(demo)
        target = url.removeprefix("http://").removesuffix("/metrics")
        with PrometheusServer({"demo": [target]}, scrape_interval="1s") as prom:
            prom.wait_for(lambda: _values(prom, 'up{job="demo"}') == {
                str({"__name__": "up", "instance": target, "job": "demo"}): 1.0},
                timeout=30, message="demo target up")

            # tasks by kind: the comments workers run (4 of them at a cycle's start)...
            worker = 'kind="introspect.demo.comments.comments_worker"'
            prom.wait_for(lambda: prom.query(
                f'max_over_time(python_asyncio_tasks{{job="demo",{worker}}}[1m]) >= 4'),
                message="4 comments workers seen")
            # ...and after the supervisor gives up, the kind still reports 0 (never vanishes)
            prom.wait_for(lambda: prom.query(
                f'min_over_time(python_asyncio_tasks{{job="demo",{worker}}}[1m]) == 0'),
                message="comments workers reported as 0 after the crash")
            prom.wait_for(lambda: prom.query(
                'python_asyncio_tasks_finished_total{job="demo",outcome="error",'
                f'{worker}}} >= 4'), message="crashed comments workers counted")

            # loop lag histogram: buckets, count, and a quantile PromQL can compute
            prom.wait_for(lambda: prom.query(
                'histogram_quantile(0.99, sum by (le) '
                '(rate(python_asyncio_loop_lag_seconds_bucket{job="demo"}[30s]))) > 0'),
                message="loop lag p99 from the histogram")
            # the 0.3 s and 1.5 s blocks land in the lag histogram's upper buckets
            prom.wait_for(lambda: prom.query(
                'python_asyncio_loop_lag_seconds_count{job="demo"} - ignoring(le) '
                'python_asyncio_loop_lag_seconds_bucket{job="demo",le="0.25"} > 0'),
                message="lag observations above 0.25 s (the demo's blocking calls)")

            # the bottleneck queue (MediaGateway.inbox, created at bottleneck.py:51) grows
            prom.wait_for(lambda: prom.query(
                'max_over_time(python_queue_length{job="demo",'
                'queue=~".*introspect/demo/bottleneck.py:51"}[1m]) >= 10'),
                message="the gateway inbox backlog")
            prom.wait_for(lambda: prom.query(
                'max_over_time(python_queue_length{job="demo",'
                'queue=~".*bottleneck.py:53"}[1m]) == 20'),
                message="the upload queue full at its capacity")
            assert prom.query('python_queue_capacity{job="demo",queue=~".*bottleneck.py:53"}'
                              ' == 20')
            # ...and who drains the backlog: the owner series joins the length on queue and
            # type (docs/metrics.md, "Who consumes a queue")
            prom.wait_for(lambda: [r["metric"].get("kind") for r in prom.query(
                'python_queue_length{job="demo",queue=~".*bottleneck.py:51"} '
                '* on (job, instance, queue, type) group_right '
                'python_queue_owner_info{role="consumer"}')] == [
                "introspect.demo.bottleneck.gateway_consumer"],
                message="the gateway inbox's consumer, joined to its length")

            # GC pause histogram, per generation
            prom.wait_for(lambda: prom.query(
                'python_gc_pause_seconds_count{job="demo",generation="0"} > 0 and ignoring(le) '
                'python_gc_pause_seconds_bucket{job="demo",generation="0",le="+Inf"} > 0'),
                message="gen 0 GC pauses")

            # exceptions by type: the comments crash, the thread and the callback errors
            prom.wait_for(lambda: {r["metric"]["type"] for r in prom.query(
                'python_exceptions_total{job="demo"} > 0')} >= {
                "UnexpectedMessage", "DemoThreadError"}, timeout=30,
                message="exceptions by type")

            # the demo's own prometheus_client metric, served next to ours
            prom.wait_for(lambda: prom.query(
                'demo_comments_processed_total{job="demo"} > 0'),
                message="the demo's custom metric")
            # and the executor of the io story
            assert prom.query('python_executor_max_workers{job="demo",executor="demo-io"} == 4')
