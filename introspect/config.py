"""Agent configuration: keyword arguments of `introspect.start()` over `INTROSPECT_*` variables.

Every option is documented once, in `OPTIONS` below; the README's environment table is
generated from it (`python -m introspect.config`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from introspect.errors import UserError

DEFAULT_BLOCK_THRESHOLD = 0.1
DEFAULT_LAG_PROBE_INTERVAL = 0.1
DEFAULT_KINDS_LIMIT = 50
DEFAULT_RECENT_ERRORS = 200
DEFAULT_RECENT_EVENTS = 500
DEFAULT_ERROR_MAX_AGE = 3600.0


@dataclass
class AgentConfig:
    listen: list[str] = field(default_factory=list)  # [] → the default Unix socket
    token: str | None = None
    read_token: str | None = None
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    otlp: bool = False
    console: bool = False
    block_threshold: float = DEFAULT_BLOCK_THRESHOLD
    lag_probe_interval: float = DEFAULT_LAG_PROBE_INTERVAL
    kinds_limit: int = DEFAULT_KINDS_LIMIT
    recent_errors: int = DEFAULT_RECENT_ERRORS
    recent_events: int = DEFAULT_RECENT_EVENTS
    error_max_age: float = DEFAULT_ERROR_MAX_AGE
    insecure_no_auth: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    audit_log: str | None = None
    sampling: bool = True  # statistical busy time (SIGPROF) when the loop is on the main thread
    handshake_timeout: float = 5.0  # a client that has not logged in by then is closed
    lints: str = ""  # "-name,+name,name.option=value" (see docs/blocking.md)
    host_log: str = "summary"  # what reaches the host's log (introspect/agent/host_log.py)
    console_locals: dict[str, Any] | None = None


# name → (environment variable, meaning); the README table is generated from this.
OPTIONS: dict[str, tuple[str, str]] = {
    "listen": ("INTROSPECT_LISTEN", "where the agent listens, comma-separated: `unix:PATH` "
               "(default: the per-user runtime dir) and/or `tcp://HOST:PORT`"),
    "token": ("INTROSPECT_TOKEN", "control token (agent); the token a client presents"),
    "read_token": ("INTROSPECT_READ_TOKEN", "read-only token (agent)"),
    "metrics_port": ("INTROSPECT_METRICS_PORT", "serve Prometheus `/metrics` on this port"),
    "metrics_addr": ("INTROSPECT_METRICS_ADDR", "address for `/metrics` (default 127.0.0.1)"),
    "otlp": ("INTROSPECT_OTLP", "`1`: export over OTLP, configured by the standard `OTEL_*` "
             "variables"),
    "console": ("INTROSPECT_CONSOLE", "`1`: allow the remote console (still needs a control "
                "token or the local socket)"),
    "block_threshold": ("INTROSPECT_BLOCK_THRESHOLD", "seconds a step may hold the loop before "
                        "it is reported (default 0.1)"),
    "kinds_limit": ("INTROSPECT_KINDS_LIMIT", "task kinds exported by name before the rest "
                    "count as `other` (default 50)"),
    "insecure_no_auth": ("INTROSPECT_INSECURE_NO_AUTH", "`1`: allow TCP on loopback without "
                         "a token (tests, never production)"),
    "tls_cert": ("INTROSPECT_TLS_CERT", "PEM certificate: TCP listeners speak TLS"),
    "tls_key": ("INTROSPECT_TLS_KEY", "PEM private key for `INTROSPECT_TLS_CERT`"),
    "tls_client_ca": ("INTROSPECT_TLS_CLIENT_CA", "require client certificates signed by this "
                      "CA"),
    "audit_log": ("INTROSPECT_AUDIT_LOG", "also append audit lines to this file"),
    "sampling": ("INTROSPECT_SAMPLING", "`0`: no statistical busy-time sampling (SIGPROF)"),
    "handshake_timeout": ("INTROSPECT_HANDSHAKE_TIMEOUT", "seconds a client has to complete "
                          "the login before it is disconnected (default 5)"),
    "lints": ("INTROSPECT_LINTS", "disable or tune runtime lints: `-name,name.option=value` "
              "(see docs/blocking.md)"),
    "host_log": ("INTROSPECT_HOST_LOG", "blocking and lint reports in the host's log: "
                 "`summary[=SECONDS]` (default: first per location, then counts every 60 s), "
                 "`all`, `off`; `,imports` also reports imports during start-up"),
}
# Read by clients (CLI, TUI) and by both sides for discovery.
CLIENT_VARIABLES: dict[str, str] = {
    "INTROSPECT_RUNTIME_DIR": "where agents announce themselves and put their sockets "
                              "(default `$XDG_RUNTIME_DIR/introspect` or `/tmp/introspect-UID`)",
    "INTROSPECT_TARGETS_FILE": "named remote agents (default `~/.config/introspect/targets.toml`)",
    "INTROSPECT_TLS_CA": "client: CA bundle to verify a `tls://` agent",
    "INTROSPECT_TLS_CLIENT_CERT": "client: certificate to present to an agent requiring one",
    "INTROSPECT_TLS_CLIENT_KEY": "client: key for `INTROSPECT_TLS_CLIENT_CERT`",
}
FILE_VARIANTS = {"token": "INTROSPECT_TOKEN_FILE", "read_token": "INTROSPECT_READ_TOKEN_FILE"}


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise UserError(f"{name}={value!r}: expected 1 or 0")


def read_token_file(path: str, variable: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise UserError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not token:
        raise UserError(f"{variable}: {path} is empty")
    return token


def from_env(environ: dict[str, str] | None = None, **overrides: Any) -> AgentConfig:
    """Build a config from `INTROSPECT_*` variables, then apply explicit keyword overrides."""
    env = os.environ if environ is None else environ
    cfg = AgentConfig()
    types = {f.name: f.type for f in fields(AgentConfig)}
    for name, (variable, _meaning) in OPTIONS.items():
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        setattr(cfg, name, _convert(name, variable, raw, str(types[name])))
    for name, variable in FILE_VARIANTS.items():
        if getattr(cfg, name) is None and env.get(variable):
            setattr(cfg, name, read_token_file(env[variable], variable))
    for name, value in overrides.items():
        if name not in types:
            raise TypeError(f"unknown agent option {name!r}")
        if value is not None:
            if name == "listen" and isinstance(value, str):
                value = [value]
            setattr(cfg, name, value)
    validate(cfg)
    return cfg


def _convert(name: str, variable: str, raw: str, type_name: str) -> Any:
    if name == "listen":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if "bool" in type_name:
        return _parse_bool(variable, raw)
    if "int" in type_name and "float" not in type_name:
        try:
            return int(raw)
        except ValueError:
            raise UserError(f"{variable}={raw!r}: expected an integer") from None
    if "float" in type_name:
        try:
            return float(raw)
        except ValueError:
            raise UserError(f"{variable}={raw!r}: expected a number of seconds") from None
    return raw


def validate(cfg: AgentConfig) -> None:
    if cfg.block_threshold <= 0:
        raise UserError("block threshold must be a positive number of seconds")
    if cfg.metrics_port is not None and not 0 <= cfg.metrics_port <= 65535:
        raise UserError(f"metrics port {cfg.metrics_port} is out of range 0-65535")
    if not 0 < cfg.handshake_timeout <= 600:
        raise UserError("INTROSPECT_HANDSHAKE_TIMEOUT must be within 0-600 seconds")
    if cfg.kinds_limit < 1:
        raise UserError("kinds limit must be at least 1")
    from introspect.agent.host_log import HostLogPolicy

    HostLogPolicy(cfg.host_log)  # a bad value is one clear error
    for spec in cfg.listen:
        if not (spec.startswith("unix:") or spec.startswith("tcp://")):
            raise UserError(f"listen address {spec!r}: use unix:PATH or tcp://HOST:PORT")


def env_table() -> str:
    rows = ["| variable | meaning |", "|---|---|"]
    for name, (variable, meaning) in OPTIONS.items():
        rows.append(f"| `{variable}` | {meaning} |")
        if name in FILE_VARIANTS:
            rows.append(f"| `{FILE_VARIANTS[name]}` | a file holding `{variable}` |")
    for variable, meaning in CLIENT_VARIABLES.items():
        rows.append(f"| `{variable}` | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(env_table())
