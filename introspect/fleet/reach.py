"""Which agent answers for a Prometheus instance, so Enter can attach to it.

In order: a local agent (`introspect ps`) whose announced `/metrics` address is the instance's,
or whose PID is the instance's `pid` label on this host; then a `targets.toml` entry named like
the instance or with `instance = "host:port"`. Anything else is reachable only through
Prometheus: `how_to_reach` says what to set up.
"""

from __future__ import annotations

import socket
import urllib.parse
from dataclasses import dataclass

from introspect.client.targets_file import load_targets, targets_path
from introspect.errors import UserError
from introspect.protocol import discovery

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class Reach:
    target: str | None  # what `resolve_target` accepts, or None when not reachable
    via: str  # "local agent" | "targets file" | ""


def _host_port(address: str) -> tuple[str, str]:
    parsed = urllib.parse.urlsplit(address if "//" in address else f"//{address}")
    try:
        port = str(parsed.port or "")
    except ValueError:
        port = ""
    return (parsed.hostname or "").lower(), port


def _is_local(host: str) -> bool:
    return host in LOCAL_HOSTS or host in {socket.gethostname().lower(),
                                           socket.getfqdn().lower()}


def find_agent(job: str, instance: str, pid: str = "") -> Reach:
    host, port = _host_port(instance)
    if _is_local(host):
        for ann in discovery.list_agents():
            if pid and str(ann.pid) == pid:
                return Reach(str(ann.pid), "local agent")
            if ann.metrics and not pid:
                a_host, a_port = _host_port(ann.metrics)
                if a_port == port and (_is_local(a_host) or a_host in ("0.0.0.0", "::")):
                    return Reach(str(ann.pid), "local agent")
    try:
        entries = load_targets()
    except UserError:
        entries = {}
    for name, entry in sorted(entries.items()):
        if name == instance or str(entry.get("instance", "")) == instance:
            return Reach(name, "targets file")
    return Reach(None, "")


def how_to_reach(job: str, instance: str) -> str:
    return (f"No agent found for {job}/{instance}: it is not a local agent (`introspect ps`) "
            f"and no entry of {targets_path()} names it. To attach, start the agent with "
            "INTROSPECT_LISTEN=tcp://0.0.0.0:7070 and a token, and add\n"
            f'  [targets.NAME]\n  address = "HOST:7070"\n  instance = "{instance}"\n'
            '  token_file = "~/.config/introspect/NAME.token"')
