"""How the exporters live with the app: bounded kinds that never vanish, the app's own registry
and MeterProvider reused, and PROMETHEUS_MULTIPROC_DIR workers."""

from __future__ import annotations

from tests.metrics.support import (
    AgentProcess,
    families,
    metrics_url,
    sample_value,
    scrape,
    wait_until,
)

KINDS = """
import asyncio, sys

async def a(): await asyncio.sleep(3600)
async def b(): await asyncio.sleep(3600)
async def c(): await asyncio.sleep(3600)
async def d(): await asyncio.sleep(3600)
async def e(): await asyncio.sleep(3600)

async def main():
    loop = asyncio.get_running_loop()
    # phase 1: a (3 tasks) and b (2); phase 2: c, d, e appear (more than the limit of 3)
    first = [asyncio.create_task(f()) for f in (a, a, a, b, b)]
    print("phase1", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    later = [asyncio.create_task(f()) for f in (c, c, c, d, e)]
    print("phase2", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for t in first + later:
        t.cancel()
    await asyncio.gather(*first, *later, return_exceptions=True)
    print("phase3", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _kinds(url: str) -> dict[str, float]:
    body, _ = scrape(url)
    return {s.labels["kind"]: s.value for s in families(body)["python_asyncio_tasks"].samples}


def test_kinds_are_capped_and_a_kind_once_seen_reports_zero() -> None:
    with AgentProcess.script(KINDS, agent_args=["--metrics-port", "0"],
                             env={"INTROSPECT_KINDS_LIMIT": "3"}) as proc:
        url = metrics_url(proc)
        proc.wait_for_line("phase1")
        kinds = _kinds(url)
        assert kinds["__main__.a"] == 3 and kinds["__main__.b"] == 2
        assert "other" not in kinds
        named_before = set(kinds)  # a, b and the main task: the limit of 3 is reached
        assert len(named_before) == 3
        proc.proc.stdin.write("\n")
        proc.proc.stdin.flush()
        proc.wait_for_line("phase2")
        kinds = _kinds(url)
        assert set(kinds) == named_before | {"other"}  # c, d, e beyond the limit: "other"
        assert kinds["other"] == 5
        proc.proc.stdin.write("\n")
        proc.proc.stdin.flush()
        proc.wait_for_line("phase3")

        def all_finished() -> dict | None:
            # A task that finishes young leaves the live counts at the loop's next probe beat
            # (<= 0.1 s later): a scrape right after may come first.
            kinds = _kinds(url)
            return kinds if kinds["__main__.a"] == kinds["__main__.b"] == kinds["other"] == 0 \
                else None

        kinds = wait_until(all_finished, timeout=10, message="live counts back to 0")
        body, _ = scrape(url)
        assert sample_value(body, "python_asyncio_tasks_finished_total", kind="other",
                            outcome="cancelled") == 5


OWN_REGISTRY = """
import asyncio, prometheus_client

async def main():
    # The app serves the default registry itself; no --metrics-port is given to the agent.
    server, _thread = prometheus_client.start_http_server(0, addr="127.0.0.1")
    print(f"serving {server.server_address[1]}", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_an_app_serving_the_default_registry_shows_our_metrics_without_a_second_server() -> None:
    with AgentProcess.script(OWN_REGISTRY) as proc:
        line = proc.wait_for_line("serving ")
        url = f"http://127.0.0.1:{line.split()[1]}/metrics"
        body = wait_until(lambda: (b := scrape(url)[0]) and "python_asyncio_tasks{" in b and b,
                          message="our families in the app's own endpoint")
        assert sample_value(body, "python_asyncio_tasks", kind="__main__.main") == 1
        announced = metrics_url_or_none(proc)
        assert announced is None  # the agent serves nothing of its own


def metrics_url_or_none(proc: AgentProcess) -> str | None:
    from introspect.protocol import discovery

    proc.wait_for_agent()
    path = discovery.announcement_path(proc.pid)
    wait_until(path.exists, message="announcement")
    return discovery.Announcement.from_json(path.read_text()).metrics


OWN_METER_PROVIDER = """
import asyncio
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(resource=Resource.create({"service.name": "shop"}),
                                         metric_readers=[reader]))

async def main():
    import introspect
    introspect.start(otlp=True)  # after the app's own OpenTelemetry set-up
    await asyncio.sleep(0.5)
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        print("resource", rm.resource.attributes.get("service.name"), flush=True)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                print("metric", sm.scope.name, m.name, flush=True)
    print("done", flush=True)

asyncio.run(main())
"""


def test_an_app_with_its_own_meter_provider_gets_our_instruments_on_it() -> None:
    with AgentProcess.script(OWN_METER_PROVIDER, under_run=False,
                             env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) as proc:
        proc.wait_for_line("done")
        out = "".join(proc.stdout)
    assert "resource shop" in out  # the app's resource, the app's reader
    assert "metric introspect python.asyncio.tasks" in out
    assert "metric introspect process.cpu.time" in out


MULTIPROC = """
import os, sys, time
from prometheus_client import Counter

JOBS = Counter("jobs_done_total", "Jobs done by the workers.")
children = []
for n in (3, 4):  # gunicorn-style: workers forked from the master, each counts its jobs
    pid = os.fork()
    if pid == 0:
        JOBS.inc(n)
        print(f"worker {os.getpid()} did {n}", flush=True)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
JOBS.inc(10)  # the master's own
print("workers done", flush=True)
time.sleep(3600)
"""


def test_prometheus_multiproc_dir_aggregates_the_app_metrics_of_every_worker(tmp_path) -> None:
    with AgentProcess.script(MULTIPROC, agent_args=["--metrics-port", "0"],
                             env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as proc:
        url = metrics_url(proc)
        proc.wait_for_line("workers done")
        body, _ = scrape(url)
    assert sample_value(body, "jobs_done_total") == 17  # 3 + 4 + 10: summed over processes
    found = families(body)
    assert "python_asyncio_tasks" in found  # this process's runtime metrics are there too
    assert sample_value(body, "process_open_fds") is not None
