"""Check OpenTelemetry's standard `OTEL_*` variables before the SDK reads them.

The SDK quietly falls back to defaults on a bad value (`OTEL_METRIC_EXPORT_INTERVAL=abc` becomes
60 s with one log line nobody reads). A user who asked for `--otlp` gets one clear
`introspect: error: ...` line instead, naming the variable and what it expects.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from introspect.errors import UserError

PROTOCOLS = ("http/protobuf", "grpc")
TEMPORALITIES = ("cumulative", "delta", "lowmemory")


@dataclass(frozen=True)
class OtelSettings:
    protocol: str
    disabled: bool
    service_name: str | None  # None: the SDK takes it from OTEL_SERVICE_NAME / RESOURCE_ATTRIBUTES


def _positive_number(env: Mapping[str, str], name: str, what: str) -> None:
    raw = env.get(name, "").strip()
    if not raw:
        return
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r}: expected {what}") from None
    if value <= 0:
        raise UserError(f"{name}={raw!r}: expected {what} greater than 0")


def _endpoint(env: Mapping[str, str], name: str) -> None:
    raw = env.get(name, "").strip()
    if not raw:
        return
    url = urllib.parse.urlsplit(raw)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UserError(f"{name}={raw!r}: expected a URL such as http://collector:4318")
    try:
        url.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise UserError(f"{name}={raw!r}: the port is not a number in 0-65535") from None


def check(env: Mapping[str, str] | None = None) -> OtelSettings:
    env = os.environ if env is None else env
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    _positive_number(env, "OTEL_METRIC_EXPORT_INTERVAL", "milliseconds (e.g. 60000)")
    _positive_number(env, "OTEL_METRIC_EXPORT_TIMEOUT", "milliseconds (e.g. 30000)")
    for name in ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"):
        _positive_number(env, name, "a timeout (e.g. 10)")
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        _endpoint(env, name)
    protocol = (env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol not in PROTOCOLS:
        raise UserError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: supported are "
                        f"{', '.join(PROTOCOLS)}")
    temporality = env.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "").strip()
    if temporality and temporality.lower() not in TEMPORALITIES:
        raise UserError(f"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={temporality!r}: "
                        f"expected one of {', '.join(TEMPORALITIES)}")
    named = bool(env.get("OTEL_SERVICE_NAME", "").strip()) or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", "")
    return OtelSettings(protocol, disabled, None if named else program_name())


def program_name() -> str:
    """`python -m pkg.app` → `pkg.app`; `python app.py` → `app`; else the executable's name.
    A multiprocessing worker (uvicorn `--workers`) is named by its parent's command."""
    from introspect.protocol.process_roles import parent_cmdline

    argv = parent_cmdline() or list(getattr(sys, "orig_argv", None) or sys.argv)
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if arg == "-c":
            break
        if not arg.startswith("-"):
            name = os.path.basename(arg)
            return name[:-3] if name.endswith(".py") else name
    return os.path.basename(argv[0]) if argv and argv[0] else "python"
