"""Who a process is in a multi-process server: the command the user ran and its role.

A uvicorn or multiprocessing worker started by `spawn` has `sys.argv == ['-c',
'--multiprocessing-fork']`: useless in `ps`, `top` and OTLP's `service.name`. Such a process is
named by its parent's command line instead. Roles come from the tree of agent-enabled
processes on this host: a process with an agent-enabled ancestor is a `worker`; a root with
agent-enabled children is the `master` (`reloader` when it was started with `--reload`); a root
alone is `main`. (multiprocessing's resource tracker gets no agent at all: see
bootstrap/sitecustomize.py.)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from introspect.protocol.discovery import Announcement


def is_multiprocessing_child(argv: list[str]) -> bool:
    """A `spawn`/`forkserver` child: `python -c 'from multiprocessing.spawn ...'
    --multiprocessing-fork`, shown as `-c --multiprocessing-fork` once Python set sys.argv."""
    return "--multiprocessing-fork" in argv or any("multiprocessing.spawn" in a for a in argv)


_parent_cmdline: tuple[int, list[str]] | None = None  # (pid it was read in, command line)


def parent_cmdline() -> list[str] | None:
    """The parent's full command line (interpreter first) when this process is a
    multiprocessing child, else None. Read once per process."""
    global _parent_cmdline
    argv = list(sys.argv)
    orig = list(getattr(sys, "orig_argv", None) or argv)
    if not (is_multiprocessing_child(argv) or is_multiprocessing_child(orig)):
        return None
    cached = _parent_cmdline
    if cached is not None and cached[0] == os.getpid():
        return cached[1]
    try:
        import psutil

        line = list(psutil.Process(os.getppid()).cmdline())
    except Exception:
        return None
    _parent_cmdline = (os.getpid(), line)
    return line


def own_command() -> list[str]:
    """This process's command as a user would name it: the parent's command line for a
    multiprocessing child (uvicorn `--workers`/`--reload`), else `sys.argv`."""
    parent = parent_cmdline()
    return (_script_argv(parent) if parent else None) or list(sys.argv)


def _script_argv(cmdline: list[str]) -> list[str]:
    """`/venv/bin/python3 /venv/bin/uvicorn app:app` → `['/venv/bin/uvicorn', 'app:app']`,
    the shape of `sys.argv`."""
    if cmdline and os.path.basename(cmdline[0]).startswith("python") and len(cmdline) > 1:
        rest = cmdline[1:]
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
            rest = rest[1:]
        return rest
    return cmdline


@dataclass(frozen=True)
class Identity:
    command: list[str]
    role: str  # main | master | reloader | worker


def identities(agents: list[Announcement]) -> dict[int, Identity]:
    """Command and role of every announced agent, from the parent links between them."""
    by_pid = {a.pid: a for a in agents}
    children: dict[int, int] = {}
    for a in agents:
        if a.ppid in by_pid:
            children[a.ppid] = children.get(a.ppid, 0) + 1
    out: dict[int, Identity] = {}
    for a in agents:
        root = a
        seen = {a.pid}
        while root.ppid in by_pid and root.ppid not in seen:
            root = by_pid[root.ppid]
            seen.add(root.pid)
        argv = list(a.command or a.argv)
        if root is not a:
            role = "worker"
            if is_multiprocessing_child(argv) or not argv or argv[0] == "-c":
                argv = list(root.command or root.argv)
        elif children.get(a.pid):
            role = "reloader" if "--reload" in a.argv else "master"
        else:
            role = "main"
        out[a.pid] = Identity(argv, role)
    return out


def descendants(agents: list[Announcement], pid: int) -> list[Announcement]:
    """`pid`'s own announcement and those of its agent-enabled descendants."""
    by_parent: dict[int, list[Announcement]] = {}
    for a in agents:
        by_parent.setdefault(a.ppid, []).append(a)
    found = [a for a in agents if a.pid == pid]
    queue = [pid]
    while queue:
        for child in by_parent.get(queue.pop(), []):
            if child.pid != pid and child not in found:
                found.append(child)
                queue.append(child.pid)
    return found
