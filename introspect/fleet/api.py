"""A small client of the Prometheus HTTP API (stdlib only), for Prometheus, Thanos, Mimir and
VictoriaMetrics alike: only the documented `/api/v1/query`, `/api/v1/query_range`,
`/api/v1/alerts` and `/api/v1/targets` endpoints.

Every failure becomes a `PrometheusUnavailable` (a `UserError`) with one line that says what to
fix: a wrong URL, a refused connection, rejected credentials, an answer that is not Prometheus'.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from introspect.errors import UserError

# Environment variables (documented in docs/fleet.md and the README's table).
ENV_URL = "INTROSPECT_PROMETHEUS_URL"
ENV_TOKEN = "INTROSPECT_PROMETHEUS_TOKEN"
ENV_TOKEN_FILE = "INTROSPECT_PROMETHEUS_TOKEN_FILE"
ENV_USER = "INTROSPECT_PROMETHEUS_USER"
ENV_PASSWORD = "INTROSPECT_PROMETHEUS_PASSWORD"
ENV_PASSWORD_FILE = "INTROSPECT_PROMETHEUS_PASSWORD_FILE"
ENV_CA = "INTROSPECT_PROMETHEUS_CA"

DEFAULT_TIMEOUT = 10.0
MAX_BODY = 32 * 1024 * 1024  # an answer larger than this is refused, not parsed


class PrometheusUnavailable(UserError):
    """Prometheus could not answer (or not as Prometheus): one line for the user."""

    exit_code = 3


class EndpointMissing(PrometheusUnavailable):
    """HTTP 404 for one endpoint (a query frontend without /api/v1/alerts, say)."""


@dataclass(frozen=True)
class PrometheusAuth:
    token: str | None = None
    user: str | None = None
    password: str | None = None

    def header(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.user is not None:
            raw = f"{self.user}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None


def _read_secret(path: str, what: str) -> str:
    try:
        return open(os.path.expanduser(path)).read().strip()
    except OSError as exc:
        raise UserError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def auth_from(token_file: str | None = None, user: str | None = None,
              password_file: str | None = None,
              environ: dict[str, str] | None = None) -> PrometheusAuth:
    """Flags first, then INTROSPECT_PROMETHEUS_* variables. Secrets come from files or the
    environment, never from the command line (other users can read it in `ps`)."""
    env = os.environ if environ is None else environ
    token = None
    if token_file or env.get(ENV_TOKEN_FILE):
        token = _read_secret(token_file or env[ENV_TOKEN_FILE], "Prometheus token")
    elif env.get(ENV_TOKEN):
        token = env[ENV_TOKEN]
    user = user or env.get(ENV_USER) or None
    password = None
    if password_file or env.get(ENV_PASSWORD_FILE):
        password = _read_secret(password_file or env[ENV_PASSWORD_FILE], "Prometheus password")
    elif env.get(ENV_PASSWORD):
        password = env[ENV_PASSWORD]
    if password is not None and user is None:
        raise UserError(f"a Prometheus password needs a user: set {ENV_USER} or "
                        "--prometheus-user")
    return PrometheusAuth(token=token, user=user, password=password)


def check_url(url: str) -> str:
    """The base URL, without a trailing slash; a one-line error when it cannot be one."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UserError(f"--prometheus {url!r}: expected http(s)://HOST:PORT[/PATH], "
                        "e.g. http://localhost:9090")
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError:
        raise UserError(f"--prometheus {url!r}: the port is not a number 1-65535") from None
    return url.strip().rstrip("/")


class PrometheusAPI:
    """GET requests to one server. Thread-safe (no shared mutable state): a refresh runs its
    queries in parallel threads."""

    def __init__(self, url: str, *, auth: PrometheusAuth | None = None, ca_file: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = check_url(url)
        self.auth = auth or PrometheusAuth()
        self.timeout = timeout
        self.requests = 0  # how many HTTP requests were made (benchmarks, tests)
        self._context: ssl.SSLContext | None = None
        if self.url.startswith("https://"):
            ca = ca_file or os.environ.get(ENV_CA) or None
            try:
                self._context = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as exc:
                raise UserError(f"cannot load the CA file {ca}: {exc}") from None

    # --- endpoints -------------------------------------------------------------------------
    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector: [{metric: {...}, value: [t, "v"]}, ...]."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.get("query", params)
        if data.get("resultType") != "vector":
            return [{"metric": {}, "value": data.get("result")}] if data.get("result") else []
        return _series(data.get("result"))

    def query_range(self, promql: str, start: float, end: float,
                    step: float) -> list[dict[str, Any]]:
        """A range query's matrix: [{metric: {...}, values: [[t, "v"], ...]}, ...]."""
        data = self.get("query_range", {"query": promql, "start": f"{start:.3f}",
                                        "end": f"{end:.3f}", "step": f"{step:g}"})
        return _series(data.get("result"))

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), each with labels, annotations, state."""
        return _series(self.get("alerts", {}).get("alerts"), labels="labels")

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with health and lastError."""
        return _series(self.get("targets", {"state": "active"}).get("activeTargets"),
                       labels="labels")

    # --- transport -------------------------------------------------------------------------
    def get(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        """`data` of a GET /api/v1/<endpoint>; PrometheusUnavailable on any failure."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url}/api/v1/{endpoint}{query}",
                                         headers={"Accept": "application/json",
                                                  "User-Agent": "introspect-fleet"})
        header = self.auth.header()
        if header:
            request.add_header("Authorization", header)
        self.requests += 1
        where = f"Prometheus at {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self._context) as resp:
                body = resp.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            body = exc.read(MAX_BODY + 1)
            self._raise_http(exc.code, body, endpoint)
        except urllib.error.URLError as exc:
            raise PrometheusUnavailable(f"cannot reach {where}: {_reason(exc.reason)}") from None
        except TimeoutError:
            raise PrometheusUnavailable(f"{where} did not answer within {self.timeout:g}s "
                                        "(overloaded, or the URL points at the wrong port?)"
                                        ) from None
        except (ConnectionError, OSError) as exc:
            raise PrometheusUnavailable(f"cannot reach {where}: {_reason(exc)}") from None
        if len(body) > MAX_BODY:
            raise PrometheusUnavailable(f"{where}: the answer to /api/v1/{endpoint} is larger "
                                        f"than {MAX_BODY >> 20} MiB; narrow --selector")
        payload = _json(body)
        if not isinstance(payload, dict) or payload.get("status") != "success" \
                or not isinstance(payload.get("data"), dict):
            if isinstance(payload, dict) and payload.get("status") == "error":
                raise PrometheusUnavailable(f"{where} refused /api/v1/{endpoint}: "
                                            f"{payload.get('error')}")
            raise PrometheusUnavailable(f"{self.url} answered /api/v1/{endpoint}, but not like "
                                        "the Prometheus HTTP API: is it the Prometheus URL "
                                        "(with its path prefix, if any)?")
        return payload["data"]

    def _raise_http(self, code: int, body: bytes, endpoint: str) -> None:
        where = f"Prometheus at {self.url}"
        if code in (401, 403):
            how = ("the token or user/password was refused" if self.auth.header()
                   else f"it needs credentials: set {ENV_TOKEN}, or {ENV_USER} and "
                   f"{ENV_PASSWORD}")
            raise PrometheusUnavailable(f"{where} answered HTTP {code}: {how}")
        payload = _json(body)
        if isinstance(payload, dict) and payload.get("status") == "error":
            raise PrometheusUnavailable(f"{where} refused the query ({payload.get('errorType')}):"
                                        f" {payload.get('error')}")
        if code == 404:
            raise EndpointMissing(f"{self.url} has no /api/v1/{endpoint} (HTTP 404): not a "
                                        "Prometheus URL, or a path prefix is missing")
        raise PrometheusUnavailable(f"{where} answered HTTP {code} to /api/v1/{endpoint}")


def _series(items: Any, labels: str = "metric") -> list[dict[str, Any]]:
    """The well-formed items of an answer (objects whose labels are an object): a server that
    answers oddly costs rows, not a traceback."""
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and isinstance(i.get(labels, {}), dict)]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is Prometheus running, and on this port?)"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (f"TLS certificate not trusted ({reason.verify_message}): give its CA with "
                f"--prometheus-ca or {ENV_CA}")
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
