"""One fleet for the whole directory: twenty real agent processes (tests/fleet/fleet_app.py)
with /metrics on ephemeral ports (INTROSPECT_METRICS_PORT=0, found in their announcements), a
real Prometheus scraping them every second with the project's alert rules (every `for:` scaled
by FOR_SCALE), and one process killed once Prometheus has seen it up."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `dashboards` and `tests.support` live at the top of the repo
    sys.path.insert(0, str(REPO))

from dashboards.generate import render_rules  # noqa: E402
from introspect.ops.alerts_gen import RuleConfig  # noqa: E402
from introspect.protocol import discovery  # noqa: E402
from tests.support.procs import AgentProcess, wait_until  # noqa: E402
from tests.support.prometheus_server import PrometheusServer  # noqa: E402

JOB = "fleet-test"
FOR_SCALE = 0.05  # for: 5m -> 15s, 10m -> 30s
APP = Path(__file__).with_name("fleet_app.py")
HEALTHY = 16
# The troubled ones, worst first, as the ranking must put them (docs/fleet.md's formula).
TROUBLED = ["doomed", "crashloop", "backlog", "blocked"]
ROLES = {"doomed": "healthy", "crashloop": "crashloop", "backlog": "backlog",
         "blocked": "blocked", **{f"healthy-{i:02d}": "healthy" for i in range(HEALTHY)}}


@dataclass
class Fleet:
    prom: PrometheusServer
    procs: dict[str, AgentProcess]
    address: dict[str, str]  # name -> instance label (127.0.0.1:PORT)
    names: dict[str, str] = field(default_factory=dict)  # instance label -> name

    def pid(self, name: str) -> int:
        return self.procs[name].proc.pid


def _metrics_address(pid: int) -> str | None:
    for ann in discovery.list_agents():
        if ann.pid == pid and ann.metrics:
            return ann.metrics.removeprefix("http://").removesuffix("/metrics")
    return None


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    procs: dict[str, AgentProcess] = {}
    try:
        for name, role in ROLES.items():
            procs[name] = AgentProcess([sys.executable, str(APP), role],
                                       env={"INTROSPECT_METRICS_PORT": "0"})
        address = {name: wait_until(lambda p=p: _metrics_address(p.proc.pid), timeout=60,
                                    message=f"{name}'s /metrics in its announcement")
                   for name, p in procs.items()}
        rules = tmp_path_factory.mktemp("rules") / "introspect.rules.yml"
        rules.write_text(render_rules(RuleConfig(for_scale=FOR_SCALE)))
        with PrometheusServer({JOB: list(address.values())}, scrape_interval="1s",
                              evaluation_interval="1s", rule_files=[rules]) as prom:
            prom.wait_for(lambda: len(prom.query(f'up{{job="{JOB}"}} == 1')) == len(ROLES),
                          timeout=60, message="Prometheus scraped every fleet member")
            procs["doomed"].proc.send_signal(signal.SIGKILL)  # killed mid-test
            procs["doomed"].proc.wait(timeout=10)
            yield Fleet(prom, procs, address, {v: k for k, v in address.items()})
    finally:
        for p in procs.values():
            if p.proc.poll() is None:
                os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait(timeout=10)
