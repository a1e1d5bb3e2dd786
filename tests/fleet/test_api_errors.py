"""The user's mistakes with --prometheus give one line on stderr and a non-zero exit: a wrong
URL, nothing listening, credentials refused, something that is not Prometheus. Credentials
reach the server as the documented variables say. Real sockets, real HTTP servers."""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.support.prometheus_server import free_port

EMPTY_VECTOR = json.dumps({"status": "success",
                           "data": {"resultType": "vector", "result": []}}).encode()
EMPTY_ALERTS = json.dumps({"status": "success", "data": {"alerts": []}}).encode()


class FakeServer(http.server.ThreadingHTTPServer):
    """Answers every GET with what `respond(path, headers)` returns; records the headers."""

    def __init__(self, respond) -> None:
        self.respond = respond
        self.seen: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(dict(self.headers))
                status, ctype, body = server.respond(self.path, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def serve() -> Iterator:
    servers: list[FakeServer] = []

    def start(respond, tls: ssl.SSLContext | None = None) -> FakeServer:
        server = FakeServer(respond)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def fleet(*args: str, env: dict[str, str] | None = None,
          command: str = "fleet") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTROSPECT_PROMETHEUS")}
    return subprocess.run([sys.executable, "-m", "introspect", command, *args],
                          capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_no_url_wrong_url_and_bad_selector() -> None:
    one_line_error(fleet(), "--prometheus URL", "INTROSPECT_PROMETHEUS_URL")
    one_line_error(fleet("--prometheus", "localhost:9090"), "expected http(s)://HOST:PORT")
    one_line_error(fleet("--prometheus", "http://127.0.0.1:1", "--selector", "job"),
                   "--selector")


def test_refused_connection() -> None:
    port = free_port()  # nothing listens there once the probe socket is closed
    one_line_error(fleet("--prometheus", f"http://127.0.0.1:{port}"), "connection refused")
    # `top --prometheus` says so before the screen opens
    one_line_error(fleet("--prometheus", f"http://127.0.0.1:{port}", command="top"),
                   "connection refused")
    one_line_error(fleet("--prometheus", f"http://127.0.0.1:{port}", "1234", command="top"),
                   "not both")


def test_credentials_refused_and_sent(serve) -> None:
    def respond(path: str, headers) -> tuple[int, str, bytes]:
        if headers.get("Authorization") not in ("Bearer s3cret",
                                                "Basic " + base64.b64encode(b"ops:pw").decode()):
            return 401, "text/plain", b"Unauthorized"
        return 200, "application/json", EMPTY_ALERTS if "alerts" in path else EMPTY_VECTOR

    server = serve(respond)
    one_line_error(fleet("--prometheus", server.url), "HTTP 401", "INTROSPECT_PROMETHEUS_TOKEN")
    one_line_error(fleet("--prometheus", server.url, env={"INTROSPECT_PROMETHEUS_TOKEN": "nope"}),
                   "HTTP 401", "refused")
    ok = fleet("--prometheus", server.url, env={"INTROSPECT_PROMETHEUS_TOKEN": "s3cret"})
    assert ok.returncode == 0, ok.stderr
    assert "0 instances" in ok.stdout and "knows no instance" in ok.stdout
    ok = fleet("--prometheus", server.url, "--json",
               env={"INTROSPECT_PROMETHEUS_USER": "ops", "INTROSPECT_PROMETHEUS_PASSWORD": "pw"})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["instances"] == []
    assert server.seen[-1]["Authorization"].startswith("Basic ")


def test_not_prometheus(serve) -> None:
    html = serve(lambda path, headers: (200, "text/html", b"<html>Grafana</html>"))
    one_line_error(fleet("--prometheus", html.url), "not like the Prometheus HTTP API")
    missing = serve(lambda path, headers: (404, "text/plain", b"404 page not found"))
    one_line_error(fleet("--prometheus", missing.url), "HTTP 404", "path prefix")


def test_a_server_without_the_alerts_endpoint_still_ranks(serve) -> None:
    def respond(path: str, headers) -> tuple[int, str, bytes]:
        if path.startswith("/api/v1/alerts"):
            return 404, "text/plain", b"404 page not found"
        return 200, "application/json", EMPTY_VECTOR

    server = serve(respond)
    ok = fleet("--prometheus", server.url)
    assert ok.returncode == 0, ok.stderr
    assert "does not serve /api/v1/alerts" in ok.stdout


def test_tls_with_a_private_ca(serve, tmp_path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "prom.key", "-out",
                    "prom.pem", "-days", "2", "-subj", "/CN=prometheus", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-addext",
                    "basicConstraints=critical,CA:TRUE"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=60)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "prom.pem", tmp_path / "prom.key")
    server = serve(lambda path, headers: (200, "application/json",
                                          EMPTY_ALERTS if "alerts" in path else EMPTY_VECTOR),
                   tls=tls)
    assert server.url.startswith("https://")
    one_line_error(fleet("--prometheus", server.url), "certificate not trusted",
                   "--prometheus-ca")
    ok = fleet("--prometheus", server.url, "--prometheus-ca", str(tmp_path / "prom.pem"))
    assert ok.returncode == 0, ok.stderr
    ok = fleet("--prometheus", server.url,
               env={"INTROSPECT_PROMETHEUS_CA": str(tmp_path / "prom.pem")})
    assert ok.returncode == 0, ok.stderr
