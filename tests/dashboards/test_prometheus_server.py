"""The real-Prometheus helper, and what only a real Prometheus can check without an agent:
it loads the generated rules, and its PromQL parser accepts every dashboard query."""

from __future__ import annotations

import pytest

from dashboards.generate import RULES_FILE
from introspect.ops import fleet_dashboard, service_dashboard
from introspect.ops.grafana_gen import panel_queries, render_expr, variable_queries
from tests.support.prometheus_server import (
    PrometheusError,
    PrometheusNotInstalled,
    PrometheusServer,
    find_binary,
)


@pytest.fixture(scope="module")
def prom(repo):
    with PrometheusServer(scrape_self=True, scrape_interval="1s",
                          rule_files=[repo / RULES_FILE]) as server:
        yield server


def test_scrapes_itself_and_answers_queries(prom):
    up = prom.wait_for(lambda: prom.query('up{job="prometheus"} == 1'), timeout=30,
                       message="Prometheus scraped itself")
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{prom.port}"
    assert prom.query("vector(42)")[0]["value"][1] == "42"
    assert prom.alerts() == [] or all(a["state"] in {"pending", "firing"} for a in prom.alerts())


def test_bad_query_raises_with_prometheus_message(prom):
    with pytest.raises(PrometheusError, match="parse error"):
        prom.query("sum(")


def test_loads_the_generated_rules(prom):
    names = {r["name"] for g in prom.rules() for r in g["rules"]}
    assert {"IntrospectTargetDown", "PythonTaskGroupVanished", "PythonTaskCrashLoop",
            "instance_kind:python_asyncio_tasks_errors:increase15m"} <= names
    assert all(r["health"] != "err" for g in prom.rules() for r in g["rules"])


@pytest.mark.parametrize("board", [service_dashboard.build(), fleet_dashboard.build()],
                         ids=["service", "fleet"])
def test_every_dashboard_query_parses(prom, board):
    for title, ref, expr in panel_queries(board):
        try:
            prom.query(render_expr(expr))
        except PrometheusError as exc:
            pytest.fail(f"{board['uid']} / {title} / {ref}: {exc}")
    for name, promql in variable_queries(board):
        prom.query(render_expr(promql))  # raises on a parse error
        assert name in {"job", "instance"}


def test_missing_binary_is_a_clear_error():
    with pytest.raises(PrometheusNotInstalled, match="make system-deps"):
        find_binary("prometheus-not-installed-here")
