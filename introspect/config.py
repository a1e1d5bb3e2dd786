"""Agent configuration: keyword arguments of `introspect.start()` over `INTROSPECT_*` variables.

Each option is declared once, below, as a field of `AgentConfig`: its type, its default, its
environment variable, how that variable's text is read, and what it means. The README's
environment table is generated from these declarations (`python -m introspect.config`), and
`introspect.start()`'s keyword parameters are checked against them by the tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
DEFAULT_HANDSHAKE_TIMEOUT = 5.0
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_STALL_TIMEOUT = 30.0


def _text(variable: str, raw: str) -> str:
    return raw


def _flag(variable: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise UserError(f"{variable}={raw!r}: expected 1 or 0")


def _integer(variable: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"{variable}={raw!r}: expected an integer") from None


def _seconds(variable: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise UserError(f"{variable}={raw!r}: expected a number of seconds") from None


def _addresses(variable: str, raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _uids(variable: str, raw: str) -> list[int]:
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{variable}={raw!r}: expected comma-separated user ids") from None


def option(default: Any, doc: str, env: str | None = None,
           read: Callable[[str, str], Any] = _text, file_env: str | None = None) -> Any:
    """One option: `env` (if any) is read with `read(variable, text)`; `file_env` names a
    variable holding the path of a file with the value (tokens)."""
    meta = {"doc": doc, "env": env, "read": read, "file_env": file_env}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class AgentConfig:
    listen: list[str] = option(
        [], "where the agent listens, comma-separated: `unix:PATH` (default: the per-user "
        "runtime dir) and/or `tcp://HOST:PORT`", "INTROSPECT_LISTEN", _addresses)
    token: str | None = option(
        None, "control token (agent); the token a client presents", "INTROSPECT_TOKEN",
        file_env="INTROSPECT_TOKEN_FILE")
    read_token: str | None = option(
        None, "read-only token (agent)", "INTROSPECT_READ_TOKEN",
        file_env="INTROSPECT_READ_TOKEN_FILE")
    metrics_port: int | None = option(
        None, "serve Prometheus `/metrics` on this port", "INTROSPECT_METRICS_PORT", _integer)
    metrics_addr: str = option(
        "127.0.0.1", "address for `/metrics` (default 127.0.0.1)", "INTROSPECT_METRICS_ADDR")
    metrics_hosts: list[str] = option(
        [], "host names `/metrics` answers to besides IP addresses, `localhost` and this "
        "machine's name (comma-separated; other Host headers get 403: DNS rebinding)",
        "INTROSPECT_METRICS_HOSTS", _addresses)
    otlp: bool = option(
        False, "`1`: export over OTLP, configured by the standard `OTEL_*` variables",
        "INTROSPECT_OTLP", _flag)
    console: bool = option(
        False, "`1`: allow the remote console (still needs a control token or the local "
        "socket)", "INTROSPECT_CONSOLE", _flag)
    block_threshold: float = option(
        DEFAULT_BLOCK_THRESHOLD, "seconds a step may hold the loop before it is reported "
        "(default 0.1)", "INTROSPECT_BLOCK_THRESHOLD", _seconds)
    lag_probe_interval: float = option(
        DEFAULT_LAG_PROBE_INTERVAL, "seconds between two loop-lag probes")
    kinds_limit: int = option(
        DEFAULT_KINDS_LIMIT, "task kinds exported by name before the rest count as `other` "
        "(default 50)", "INTROSPECT_KINDS_LIMIT", _integer)
    queue_owner_metric: bool = option(
        True, "`0`: no `python_queue_owner_info` series (the task kinds seen consuming and "
        "producing each queue, as labels; docs/metrics.md)", "INTROSPECT_QUEUE_OWNER_METRIC",
        _flag)
    recent_errors: int = option(DEFAULT_RECENT_ERRORS, "unhandled errors kept for clients")
    recent_events: int = option(DEFAULT_RECENT_EVENTS, "events (blocks, lints…) kept for clients")
    error_max_age: float = option(DEFAULT_ERROR_MAX_AGE, "seconds an error is kept")
    insecure_no_auth: bool = option(
        False, "`1`: allow TCP on loopback without a token (tests, never production)",
        "INTROSPECT_INSECURE_NO_AUTH", _flag)
    tls_cert: str | None = option(
        None, "PEM certificate: TCP listeners speak TLS", "INTROSPECT_TLS_CERT")
    tls_key: str | None = option(
        None, "PEM private key for `INTROSPECT_TLS_CERT`", "INTROSPECT_TLS_KEY")
    tls_client_ca: str | None = option(
        None, "require client certificates signed by this CA", "INTROSPECT_TLS_CLIENT_CA")
    audit_log: str | None = option(
        None, "also append audit lines to this file", "INTROSPECT_AUDIT_LOG")
    sampling: bool = option(
        True, "`0`: no statistical busy-time sampling (SIGPROF)", "INTROSPECT_SAMPLING", _flag)
    task_created_at: bool = option(
        True, "`0`: do not record where each task was created (task detail's \"created at\" "
        "then names the coroutine's `def` line; saves a walk of a few frames per task)",
        "INTROSPECT_TASK_CREATED_AT", _flag)
    handshake_timeout: float = option(
        DEFAULT_HANDSHAKE_TIMEOUT, "seconds a client has to complete the login before it is "
        "disconnected (default 5)", "INTROSPECT_HANDSHAKE_TIMEOUT", _seconds)
    idle_timeout: float = option(
        DEFAULT_IDLE_TIMEOUT, "seconds a logged-in connection may send nothing before it is "
        f"closed; streams are never idle; `0`: never (default {DEFAULT_IDLE_TIMEOUT:g})",
        "INTROSPECT_IDLE_TIMEOUT", _seconds)
    stall_timeout: float = option(
        DEFAULT_STALL_TIMEOUT, "seconds a client may leave the agent's replies or updates "
        f"unread before its connection is aborted (default {DEFAULT_STALL_TIMEOUT:g})",
        "INTROSPECT_STALL_TIMEOUT", _seconds)
    allow_uids: list[int] = option(
        [], "other user ids let in on the Unix socket as the owner is (comma-separated; the "
        "socket file's mode must let them connect); any other uid is refused",
        "INTROSPECT_ALLOW_UIDS", _uids)
    lints: str = option(
        "", "disable or tune runtime lints: `-name,name.option=value` (see docs/blocking.md)",
        "INTROSPECT_LINTS")
    host_log: str = option(
        "summary", "blocking and lint reports in the host's log: `summary[=SECONDS]` (default: "
        "first per location, then counts every 60 s), `all`, `off`; `,imports` also reports "
        "imports during start-up", "INTROSPECT_HOST_LOG")
    console_locals: dict[str, Any] | None = option(
        None, "extra names the remote console starts with")
    console_time_limit: float = option(
        0.0, "seconds a console evaluation may run before it is stopped (default 0: until "
        "Ctrl-C)", "INTROSPECT_CONSOLE_TIME_LIMIT", _seconds)


# Read by clients (CLI, TUI) and by both sides for discovery.
CLIENT_VARIABLES: dict[str, str] = {
    "INTROSPECT_RUNTIME_DIR": "where agents announce themselves and put their sockets "
                              "(default `$XDG_RUNTIME_DIR/introspect`, else `introspect-UID` in "
                              "the temp dir: `$TMPDIR`, usually `/tmp`; agent and CLI must agree)",
    "INTROSPECT_TARGETS_FILE": "named remote agents (default `~/.config/introspect/targets.toml`)",
    "INTROSPECT_TLS_CA": "client: CA bundle to verify a `tls://` agent",
    "INTROSPECT_TLS_CLIENT_CERT": "client: certificate to present to an agent requiring one",
    "INTROSPECT_TLS_CLIENT_KEY": "client: key for `INTROSPECT_TLS_CLIENT_CERT`",
}


def read_token_file(path: str, variable: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise UserError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not token:
        raise UserError(f"{variable}: {path} is empty")
    return token


def option_names() -> list[str]:
    return [f.name for f in fields(AgentConfig)]


def normalize(name: str, value: Any) -> Any:
    """A keyword value as the config holds it (`listen="unix:/p"` → `["unix:/p"]`)."""
    if name == "listen" and isinstance(value, str):
        return [value]
    return value


def from_env(environ: dict[str, str] | None = None, **overrides: Any) -> AgentConfig:
    """Build a config from `INTROSPECT_*` variables, then apply explicit keyword overrides
    (None means "not given": the variable, else the default)."""
    env = os.environ if environ is None else environ
    cfg = AgentConfig()
    for f in fields(AgentConfig):
        variable, file_variable = f.metadata["env"], f.metadata["file_env"]
        raw = env.get(variable) if variable else None
        if raw:
            setattr(cfg, f.name, f.metadata["read"](variable, raw))
        elif file_variable and env.get(file_variable):
            setattr(cfg, f.name, read_token_file(env[file_variable], file_variable))
    names = set(option_names())
    for name, value in overrides.items():
        if name not in names:
            raise TypeError(f"unknown agent option {name!r}")
        if value is not None:
            setattr(cfg, name, normalize(name, value))
    validate(cfg)
    return cfg


def validate(cfg: AgentConfig) -> None:
    if cfg.block_threshold <= 0:
        raise UserError("block threshold must be a positive number of seconds")
    if cfg.metrics_port is not None and not 0 <= cfg.metrics_port <= 65535:
        raise UserError(f"metrics port {cfg.metrics_port} is out of range 0-65535")
    if not 0 < cfg.handshake_timeout <= 600:
        raise UserError("INTROSPECT_HANDSHAKE_TIMEOUT must be within 0-600 seconds")
    if cfg.console_time_limit < 0:
        raise UserError("INTROSPECT_CONSOLE_TIME_LIMIT must be 0 (no limit) or positive")
    if not 0 <= cfg.idle_timeout < float("inf"):  # also refuses NaN
        raise UserError("INTROSPECT_IDLE_TIMEOUT must be a number of seconds >= 0")
    if not 0 < cfg.stall_timeout < float("inf"):
        raise UserError("INTROSPECT_STALL_TIMEOUT must be a positive number of seconds")
    if cfg.kinds_limit < 1:
        raise UserError("kinds limit must be at least 1")
    from introspect.agent.host_log import HostLogPolicy

    HostLogPolicy(cfg.host_log)  # a bad value is one clear error
    for spec in cfg.listen:
        if not (spec.startswith("unix:") or spec.startswith("tcp://")):
            raise UserError(f"listen address {spec!r}: use unix:PATH or tcp://HOST:PORT")


def env_table() -> str:
    rows = ["| variable | meaning |", "|---|---|"]
    for f in fields(AgentConfig):
        variable, file_variable = f.metadata["env"], f.metadata["file_env"]
        if variable:
            rows.append(f"| `{variable}` | {f.metadata['doc']} |")
        if file_variable:
            rows.append(f"| `{file_variable}` | a file holding `{variable}` |")
    for variable, meaning in CLIENT_VARIABLES.items():
        rows.append(f"| `{variable}` | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(env_table())
