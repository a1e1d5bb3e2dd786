"""`introspect fleet` against a real Prometheus scraping twenty real agents (conftest.py): the
troubled ones first in the expected order, the killed one down, the alert column equal to
Prometheus' own /api/v1/alerts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from introspect.fleet.api import PrometheusAPI
from introspect.fleet.queries import FleetQueries
from introspect.fleet.refresh import FleetReport, FleetSource
from tests.fleet.conftest import HEALTHY, JOB, ROLES, TROUBLED, Fleet
from tests.support.procs import wait_until

DEADLINE = 150.0  # the slowest alert (`for:` 30s) after enough samples for its trend
# The alert each troubled member must show (pending or firing) beside its row.
EXPECTED_ALERTS = {"doomed": "IntrospectTargetDown", "crashloop": "PythonTaskCrashLoop",
                   "backlog": "PythonQueueBacklogGrowing", "blocked": "PythonEventLoopBlocked"}


def report(fleet: Fleet) -> FleetReport:
    source = FleetSource(PrometheusAPI(fleet.prom.url), FleetQueries(f'job="{JOB}"'))
    try:
        return source.refresh()
    finally:
        source.close()


def order(fleet: Fleet, rep: FleetReport) -> list[str]:
    return [fleet.names.get(i.instance, i.instance) for i in rep.instances]


def alerts_of(rep: FleetReport) -> dict[str, set[str]]:
    return {i.instance: {a.name for a in i.alerts} for i in rep.instances}


@pytest.mark.timeout(300)
def test_troubled_first_in_order_with_their_alerts(fleet: Fleet) -> None:
    def settled() -> FleetReport | None:
        rep = report(fleet)
        names = order(fleet, rep)
        shown = alerts_of(rep)
        scores = dict(zip(names, (i.score for i in rep.instances), strict=True))
        ok = names[:len(TROUBLED)] == TROUBLED and all(
            EXPECTED_ALERTS[n] in shown[fleet.address[n]] for n in TROUBLED) and \
            max(v for n, v in scores.items() if n not in TROUBLED) < 1.0 < scores["blocked"]
        return rep if ok else None

    try:
        rep = wait_until(settled, timeout=DEADLINE, interval=1.0,
                         message="the troubled members ranked first, with their alerts, "
                                 "every healthy one under 1")
    except AssertionError:
        last = report(fleet)
        from introspect.fleet.render import report_text

        raise AssertionError(f"ranking never settled:\n{report_text(last)}") from None
    by_name = {fleet.names[i.instance]: i for i in rep.instances}
    assert len(by_name) == len(ROLES) == HEALTHY + len(TROUBLED)
    assert by_name["doomed"].up is False
    assert all(by_name[n].up for n in ROLES if n != "doomed")
    assert "crashes" in by_name["crashloop"].components
    assert "backlog_growth" in by_name["backlog"].components
    assert "blocked" in by_name["blocked"].components


@pytest.mark.timeout(300)
def test_alert_column_matches_prometheus_alerts(fleet: Fleet) -> None:
    wait_until(lambda: any(a.get("state") == "firing" for a in fleet.prom.alerts()),
               timeout=DEADLINE, interval=1.0, message="some alert firing")

    def truth() -> dict[str, set[tuple[str, str]]]:
        out: dict[str, set[tuple[str, str]]] = {i: set() for i in fleet.names}
        for a in fleet.prom.alerts():
            labels = a["labels"]
            if labels.get("job") == JOB and labels.get("instance") in out:
                out[labels["instance"]].add((labels["alertname"], a["state"]))
        return out

    def agrees() -> bool:
        before = truth()
        rep = report(fleet)
        shown = {i.instance: {(a.name, a.state) for a in i.alerts} for i in rep.instances}
        # Alerts move between refreshes: compare only when Prometheus held still around it.
        return before == truth() and shown == before

    wait_until(agrees, timeout=60, interval=0.5, message="alert column == /api/v1/alerts")


def test_cli_json_and_text(fleet: Fleet) -> None:
    cmd = [sys.executable, "-m", "introspect", "fleet", "--prometheus", fleet.prom.url,
           "--selector", f'{{job="{JOB}"}}']
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {i["instance"] for i in data["instances"]} == set(fleet.names)
    assert data["requests"] >= 11  # one batched set: ten signals, alerts (+ range, targets)
    doomed = next(i for i in data["instances"] if i["instance"] == fleet.address["doomed"])
    assert doomed["up"] is False and doomed["reasons"][0].startswith("down")
    text = subprocess.run([*cmd, "--rows", "5"], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "DOWN" in text.stdout and f"{JOB}/{fleet.address['doomed']}" in text.stdout
    assert "… 15 more" in text.stdout
