"""Real multi-worker servers under `introspect run` for the deploy tests: a FastAPI app, uvicorn
and gunicorn started on free ports, requests sent concurrently, workers found by `ps --json`."""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tests.support.procs import AgentProcess, wait_until
from tests.support.prometheus_server import PrometheusServer, find_binary, free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHIPPED_SCRAPE_CONFIG = REPO / "exporters" / "prometheus" / "prometheus.yml"
REQUEST_KIND = re.compile(r"RequestResponseCycle\.run_asgi$")

APP = '''
import asyncio
from fastapi import FastAPI

app = FastAPI()
VERSION = "one"


@app.get("/")
async def root() -> dict:
    await asyncio.sleep(0.005)
    return {"version": VERSION}
'''


def write_app(directory: Path, version: str = "one") -> None:
    (directory / "app.py").write_text(APP.replace('"one"', f'"{version}"'))


def start(server_argv: list[str], app_dir: Path, metrics_port: int,
          env: dict[str, str] | None = None) -> AgentProcess:
    argv = [str(BIN / "introspect"), "run", "--metrics-port", str(metrics_port), "--",
            *server_argv]
    return AgentProcess(argv, env=env, cwd=str(app_dir))


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def burst(url: str, count: int, concurrency: int = 8) -> list[int]:
    """`count` requests, `concurrency` at a time; the status of each."""
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: get(url)[0], range(count)))


def agents() -> list[dict]:
    out = subprocess.run([str(BIN / "introspect"), "ps", "--json"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return json.loads(out)


def workers_of(root_pid: int, count: int) -> list[dict]:
    """Wait until `count` agent-enabled workers of `root_pid` serve /metrics."""
    def found() -> list[dict] | None:
        listed = [a for a in agents() if a["ppid"] == root_pid and a["metrics"]]
        return listed if len(listed) == count else None

    return wait_until(found, timeout=60, interval=0.2, message=f"{count} workers announced")


class ShippedWorkersPrometheus(PrometheusServer):
    """The real Prometheus configured by the shipped scrape config's `python-workers` job (HTTP
    service discovery at the configured metrics port), with test-speed intervals."""

    def __init__(self, metrics_port: int) -> None:
        super().__init__({})
        self.metrics_port = metrics_port

    def start(self) -> ShippedWorkersPrometheus:
        text = SHIPPED_SCRAPE_CONFIG.read_text()
        job = text[text.index("  - job_name: python-workers"):]
        job = job[:job.index("\n\n")]
        job = job.replace("127.0.0.1:9464", f"127.0.0.1:{self.metrics_port}").replace(
            "refresh_interval: 30s", "refresh_interval: 1s")
        self._tmp = tempfile.TemporaryDirectory(prefix="introspect-deploy-prom-")
        directory = Path(self._tmp.name)
        config = directory / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                          "scrape_configs:\n" + job + "\n")
        self.port = free_port()
        self._log = directory / "prometheus.log"
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [find_binary(), f"--config.file={config}",
                 f"--storage.tsdb.path={directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_for(self._ready, timeout=30, message="Prometheus ready")
        return self


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
