"""Helpers for the metrics tests: find an agent's /metrics URL, scrape it, receive OTLP.

(A module of its own, not conftest: the suite has several conftest modules.)
"""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from introspect.protocol import discovery
from tests.support.procs import AgentProcess, wait_until

REPO = Path(__file__).resolve().parents[2]

__all__ = ["REPO", "AgentProcess", "OtlpReceiver", "families", "metrics_url", "scrape",
           "wait_until"]


def metrics_url(proc: AgentProcess, timeout: float = 20.0) -> str:
    """The /metrics URL the agent announced (works with `--metrics-port 0`)."""

    def announced() -> str | None:
        if proc.proc.poll() is not None:
            raise AssertionError(f"exited {proc.proc.returncode}: {''.join(proc.stderr)}")
        path = discovery.announcement_path(proc.pid)
        if not path.exists():
            return None
        return discovery.Announcement.from_json(path.read_text()).metrics

    return wait_until(announced, timeout, message="announced /metrics URL")


def scrape(url: str, timeout: float = 5.0, accept: str | None = None) -> tuple[str, float]:
    """(body, seconds) of one GET."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read().decode()
    return body, time.perf_counter() - started


def families(body: str) -> dict[str, Any]:
    """Family name (as declared by `# TYPE`) → prometheus_client's parsed Metric."""
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family for family in text_string_to_metric_families(body)}


def sample_value(body: str, name: str, **labels: str) -> float | None:
    for family in families(body).values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


class OtlpReceiver:
    """A tiny OTLP/HTTP receiver on 127.0.0.1:<ephemeral>: decodes every POST /v1/metrics
    with opentelemetry-proto's real ExportMetricsServiceRequest."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        self.requests: list[Any] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                receiver.paths.append(self.path)
                receiver.requests.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metrics(self) -> dict[str, Any]:
        """Metric name → the last received proto Metric."""
        out: dict[str, Any] = {}
        for request in list(self.requests):
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        out[metric.name] = metric
        return out

    def resources(self) -> list[dict[str, Any]]:
        """Every resource received, with at least one data point, in order."""
        return [{kv.key: _any_value(kv.value) for kv in rm.resource.attributes}
                for request in list(self.requests) for rm in request.resource_metrics
                if rm.scope_metrics]

    def resource(self) -> dict[str, Any]:
        for request in reversed(list(self.requests)):
            for rm in request.resource_metrics:
                return {kv.key: _any_value(kv.value) for kv in rm.resource.attributes}
        return {}


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def point_attributes(point: Any) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in point.attributes}
