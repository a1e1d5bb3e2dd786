"""TARGET = a PID, a Unix socket path, or HOST:PORT (optionally tcp:// or tls://)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from introspect.errors import ConnectError, UserError
from introspect.protocol import discovery
from introspect.textsafe import escape


@dataclass(frozen=True)
class Target:
    kind: str  # "unix" | "tcp"
    address: str  # socket path, or host
    port: int = 0
    pid: int | None = None
    tls: bool = False

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.address}"
        scheme = "tls" if self.tls else "tcp"
        return f"{scheme}://{self.address}:{self.port}"


def resolve_target(text: str) -> Target:
    """Turn what the user typed into an address; one-line errors for every mistake."""
    text = text.strip()
    if not text:
        raise UserError("empty target: give a PID, a socket path, or HOST:PORT")
    if text.isdigit():
        return _pid_target(int(text))
    for scheme, tls in (("tcp://", False), ("tls://", True)):
        if text.startswith(scheme):
            return _host_port(text[len(scheme):], tls)
    if text.startswith("unix:"):
        text = text[len("unix:"):]
    if "/" in text or text.endswith(".sock") or os.path.exists(text):
        path = Path(text).expanduser()
        if not path.exists():
            raise ConnectError(f"no such socket: {path}")
        if not path.is_socket():
            raise UserError(f"{path} is not a socket")
        return Target("unix", str(path), pid=_pid_from_socket_name(path))
    if ":" in text:
        return _host_port(text, False)
    from introspect.client.targets_file import lookup

    named = lookup(text)
    if named is not None:
        return named
    raise UserError(f"cannot understand target {text!r}: give a PID, a socket path, HOST:PORT, "
                    "or a name from ~/.config/introspect/targets.toml")


def _pid_target(pid: int) -> Target:
    """The socket of PID's agent, only from a directory that is ours and private and only a
    socket file of ours: an impostor's socket in a dir someone else made is never used."""
    if not discovery.pid_alive(pid):
        raise ConnectError(f"no process with PID {pid}")
    configured = discovery.configured_runtime_dir()
    refused = discovery.untrusted_reason(configured)
    for directory in discovery.agent_dirs():
        path = discovery.socket_path(pid, directory)
        if discovery.untrusted_reason(directory) is None and discovery.owned_socket(path):
            return Target("unix", str(path), pid=pid)
    for ann in discovery.list_agents():
        if ann.pid == pid and ann.socket:
            return Target("unix", ann.socket, pid=pid)
    if refused:
        raise ConnectError(f"not using the runtime dir {escape(str(configured), None)} to find "
                           f"PID {pid}: {refused}; give the agent's socket path instead")
    raise ConnectError(f"process {pid} has no introspect agent (start it with "
                       "`introspect run -- ...` or `introspect.start()`; see `introspect ps`)")


def _host_port(text: str, tls: bool) -> Target:
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UserError(f"bad address {text!r}: expected HOST:PORT")
    return Target("tcp", host, int(port_text), tls=tls)


def _pid_from_socket_name(path: Path) -> int | None:
    stem = path.stem
    if stem.startswith("agent-") and stem[6:].isdigit():
        return int(stem[6:])
    return None
