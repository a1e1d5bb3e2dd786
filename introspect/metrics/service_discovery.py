"""Prometheus service discovery for multi-process servers (docs/metrics.md, "Several workers").

Each worker of a uvicorn/gunicorn/multiprocessing server serves its own `/metrics` on a port of
its own (the configured port is the first process's). Prometheus finds them through
- `http_sd_configs` pointed at `http://HOST:PORT/sd` of the configured port: the process holding
  it lists itself and its agent-enabled descendants;
- `file_sd_configs` over a file `introspect ps --prometheus-sd FILE` writes (every agent of
  this user on the host).

Each target carries a `pid` label (series of workers never collide) and `__meta_introspect_*`
labels (`role`, `program`) for relabeling.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

from introspect.protocol import discovery
from introspect.protocol.process_roles import descendants, identities

WILDCARDS = ("0.0.0.0", "::", "")


def targets(agents: list[discovery.Announcement],
            request_host: str | None = None) -> list[dict[str, object]]:
    """Target groups (Prometheus' file_sd/http_sd JSON) for the agents serving `/metrics`. A
    worker bound to a wildcard address is reached at `request_host` (the host Prometheus used
    to ask), else at 127.0.0.1."""
    names = identities(agents)
    groups: list[dict[str, object]] = []
    for a in agents:
        if not a.metrics:
            continue
        url = urllib.parse.urlsplit(a.metrics)
        host = url.hostname or ""
        if host in WILDCARDS:
            host = request_host or "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        identity = names[a.pid]
        groups.append({
            "targets": [f"{shown}:{url.port}"],
            "labels": {
                "pid": str(a.pid),
                "__meta_introspect_role": identity.role,
                # the program's name only: a command line may carry secrets (--password=...)
                "__meta_introspect_program": _program(identity.command),
                "__metrics_path__": url.path or "/metrics",
            },
        })
    return groups


def _program(command: list[str]) -> str:
    """`/venv/bin/uvicorn app:app` → `uvicorn`; `python -m pkg.app` → `pkg.app`."""
    if "-m" in command[:-1]:
        return command[command.index("-m") + 1]
    return os.path.basename(command[0]) if command else ""


def http_sd(holder_pid: int, headers: dict[str, str]) -> tuple[bytes, str]:
    """The `/sd` route of the configured metrics port: this process and its descendants."""
    agents = discovery.list_agents(clean=False)
    host = headers.get("host", "")
    request_host = urllib.parse.urlsplit(f"//{host}").hostname if host else None
    found = targets(descendants(agents, holder_pid), request_host)
    return json.dumps(found).encode(), "application/json"


def write_file(path: Path, agents: list[discovery.Announcement]) -> None:
    """Atomically (Prometheus may read it at any moment)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(targets(agents), indent=2) + "\n")
    os.replace(tmp, path)
