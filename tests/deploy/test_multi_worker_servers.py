"""Real uvicorn and gunicorn servers with several workers under `introspect run --metrics-port`:
every request succeeds, and a real Prometheus configured by the shipped scrape config finds
every worker through the configured port's `/sd` and stores its asyncio metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.support import (
    BIN,
    REQUEST_KIND,
    ShippedWorkersPrometheus,
    agents,
    burst,
    free_ports,
    get,
    start,
    workers_of,
    write_app,
)
from tests.support.procs import wait_until

WORKERS = 3
REQUESTS = 60


def _uvicorn(port: int) -> list[str]:
    return [str(BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS)]


def _gunicorn(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "-k", "uvicorn.workers.UvicornWorker", "-w", str(WORKERS),
            "-b", f"127.0.0.1:{port}", "--no-control-socket", "app:app"]


@pytest.mark.parametrize("server", [_uvicorn, _gunicorn], ids=["uvicorn", "gunicorn"])
def test_every_worker_serves_requests_and_reaches_prometheus(server, tmp_path: Path) -> None:
    write_app(tmp_path)
    app_port, metrics_port = free_ports(2)
    with start(server(app_port), tmp_path, metrics_port) as proc:
        listed = workers_of(proc.pid, WORKERS)
        workers = {a["pid"] for a in listed}
        # named by the command the user ran, not `-c --multiprocessing-fork`
        for worker in listed:
            assert worker["role"] == "worker"
            assert Path(worker["command"][0]).name == Path(server(app_port)[0]).name, worker
        everyone = agents()
        assert [a["role"] for a in everyone if a["pid"] == proc.pid] == ["master"]
        # multiprocessing's resource tracker runs no app code: no agent there
        assert not [a for a in everyone if "resource_tracker" in " ".join(a["argv"])]
        url = f"http://127.0.0.1:{app_port}/"
        wait_until(lambda: get(url)[0] == 200, timeout=60, message="the app answers")
        statuses = burst(url, REQUESTS)
        assert statuses == [200] * REQUESTS, "".join(proc.stderr)[-3000:]
        with ShippedWorkersPrometheus(metrics_port) as prom:
            def tasks_per_pid() -> set[int]:
                rows = prom.query('python_asyncio_tasks{job="python-workers"}')
                return {int(r["metric"]["pid"]) for r in rows}

            prom.wait_for(lambda: workers <= tasks_per_pid(), timeout=90,
                          message="python_asyncio_tasks of every worker")
            # the master is a target too (the configured port), without a loop of its own
            prom.wait_for(lambda: {proc.pid, *workers} <= {
                int(r["metric"]["pid"]) for r in prom.query('up{job="python-workers"} == 1')},
                timeout=30, message="the master and every worker up")

            def handled() -> float:
                rows = prom.query('python_asyncio_tasks_finished_total{job="python-workers"}')
                return sum(float(r["value"][1]) for r in rows
                           if REQUEST_KIND.search(r["metric"]["kind"])
                           and int(r["metric"]["pid"]) in workers)

            # every request of the burst (and the readiness probes before it) was one
            # request-handler task in some worker
            prom.wait_for(lambda: handled() >= REQUESTS, timeout=60,
                          message="the burst's request-handler tasks")
            roles = {r["metric"]["pid"]: r["metric"]["role"] for r in
                     prom.query('python_asyncio_tasks{job="python-workers"}')}
            assert {roles[str(pid)] for pid in workers} == {"worker"}
