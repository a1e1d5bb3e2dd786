"""Run the real `prometheus` binary for a test: free loopback port, temporary storage and config.

    with PrometheusServer({"demo": ["127.0.0.1:9464"]}, scrape_interval="1s") as prom:
        prom.wait_for(lambda: prom.query('up{job="demo"} == 1'), timeout=30)
        prom.alerts()

Everything synchronises by polling with a deadline. A missing binary raises
PrometheusNotInstalled: tests fail loudly (CI installs it with `make system-deps`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class PrometheusNotInstalled(RuntimeError):
    pass


class PrometheusError(RuntimeError):
    pass


class _Exited(Exception):  # internal: the process died during start()
    pass


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(name: str = "prometheus") -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK)
                                  else None)
    if not path:
        raise PrometheusNotInstalled(
            f"`{name}` is not installed: these tests run the real Prometheus. "
            "Install it with `make system-deps` (Debian/Ubuntu: apt-get install prometheus)."
        )
    return path


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.1,
             message: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_error: Exception | None = None
    while True:
        try:
            last = predicate()
            last_error = None
            if last:
                return last
        except (PrometheusError, OSError) as exc:  # not up yet, or a query that may pass later
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last!r}"
            raise TimeoutError(f"{message} not met within {timeout}s ({detail})")
        time.sleep(interval)


class PrometheusServer:
    """The real Prometheus on 127.0.0.1:<free port>; a context manager.

    targets: scrape job name -> ["host:port", ...]. `scrape_self` adds job "prometheus"
    scraping this server's own /metrics. `rule_files` are copied into the config as given.
    """

    def __init__(
        self,
        targets: Mapping[str, Iterable[str]] | None = None,
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        rule_files: Iterable[str | os.PathLike[str]] = (),
        scrape_self: bool = False,
        binary: str | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.targets = {job: list(addrs) for job, addrs in (targets or {}).items()}
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.scrape_self = scrape_self
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise PrometheusError("Prometheus is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        binary = self.binary or find_binary()
        self._tmp = tempfile.TemporaryDirectory(prefix="introspect-prom-")
        tmp = Path(self._tmp.name)
        for _attempt in range(3):  # another process may grab the free port before we bind it
            self.port = free_port()
            config = tmp / "prometheus.yml"
            config.write_text(json.dumps(self._config(), indent=2))  # JSON is valid YAML
            self._log = tmp / "prometheus.log"
            with self._log.open("wb") as log:
                self._proc = subprocess.Popen(
                    [binary, f"--config.file={config}",
                     f"--storage.tsdb.path={tmp / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}",
                     "--web.enable-lifecycle", "--log.level=warn"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            try:
                wait_for(self._ready, self.startup_timeout, interval=0.05,
                         message="Prometheus /-/ready")
                return self
            except (TimeoutError, _Exited) as exc:
                exited = self._proc.poll() is not None
                log_text = self.log_tail()
                self._kill()
                if exited and "address already in use" in log_text:
                    continue
                self.stop()
                raise PrometheusError(f"Prometheus did not start: {exc}\n{log_text}") from exc
        self.stop()
        raise PrometheusError("Prometheus could not bind a free port in 3 attempts")

    def stop(self) -> None:
        self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _config(self) -> dict[str, Any]:
        jobs = dict(self.targets)
        if self.scrape_self:
            jobs["prometheus"] = [f"127.0.0.1:{self.port}"]
        return {
            "global": {"scrape_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.evaluation_interval},
            "rule_files": self.rule_files,
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": addrs}]}
                               for job, addrs in jobs.items()],
        }

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise _Exited(f"prometheus exited with code {self._proc.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except (AttributeError, OSError):
            return ""

    # HTTP API -----------------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; return `data`, or raise PrometheusError with Prometheus' error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                body = json.load(exc)
            except ValueError:
                raise PrometheusError(f"{path}: HTTP {exc.code}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the result list ([] when nothing matches; scalars as one item)."""
        data = self.api("query", query=promql)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts: each with labels, annotations, state (pending|firing), activeAt."""
        return self.api("alerts")["alerts"]

    def rules(self) -> list[dict[str, Any]]:
        return self.api("rules")["groups"]

    def active_targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 30.0,
                 interval: float = 0.2, message: str = "condition") -> T:
        try:
            return wait_for(predicate, timeout, interval, message)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- prometheus log ---\n{self.log_tail()}") from None
