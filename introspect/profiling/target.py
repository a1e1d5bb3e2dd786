"""Which local process py-spy should attach to, from what the user typed as TARGET."""

from __future__ import annotations

import re
from pathlib import Path

from introspect.errors import UserError
from introspect.protocol.discovery import pid_alive
from introspect.textsafe import escape

_SOCKET_NAME = re.compile(r"agent-(\d+)\.sock")
NEEDS_LOCAL = "profile needs a PID or a local agent socket (py-spy runs on this host)"


pid_exists = pid_alive  # one definition, shared with agent discovery


def _existing(pid: int, what: str) -> int:
    if pid <= 0 or not pid_exists(pid):
        raise UserError(f"no process with PID {pid}{what}")
    return pid


def resolve_pid(target: str) -> int:
    """TARGET -> PID of a process on this host.

    An integer string is that PID (it must exist); an existing `.../agent-<PID>.sock` (the
    agent's local socket, optionally written `unix:PATH`) is its PID. Anything else (HOST:PORT,
    names) is a UserError: py-spy can only attach to a process on this host."""
    text = target.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return _existing(int(text), "")
    if text.startswith("unix:"):
        text = text[len("unix:"):]
    path = Path(text).expanduser()
    if text.endswith(".sock") and path.exists():
        m = _SOCKET_NAME.fullmatch(path.name)
        if m:
            return _existing(int(m.group(1)), f" (stale agent socket {escape(str(path))})")
    raise UserError(NEEDS_LOCAL)
