"""Where agents announce themselves on this host, and how clients find them.

Each agent owns `<runtime dir>/agent-<pid>.sock` (mode 0600) and `agent-<pid>.json` (what `ps`
shows). The runtime dir is per user: `$XDG_RUNTIME_DIR/introspect` or `/tmp/introspect-<uid>`,
mode 0700, and must be owned by us. Entries of dead processes are removed when listed.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RuntimeDirError(Exception):
    pass


def runtime_dir(create: bool = False) -> Path:
    override = os.environ.get("INTROSPECT_RUNTIME_DIR")
    if override:
        path = Path(override)
    elif os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "introspect"
    else:
        path = Path(tempfile.gettempdir()) / f"introspect-{os.getuid()}"
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
        if info.st_uid != os.getuid():
            raise RuntimeDirError(f"{path} belongs to another user; refusing to use it")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o700)
    return path


def socket_path(pid: int, directory: Path | None = None) -> Path:
    return (directory or runtime_dir()) / f"agent-{pid}.sock"


def announcement_path(pid: int, directory: Path | None = None) -> Path:
    return (directory or runtime_dir()) / f"agent-{pid}.json"


@dataclass
class Announcement:
    pid: int
    ppid: int
    argv: list[str]
    started_at: float
    socket: str
    tcp: str | None = None
    metrics: str | None = None
    python: str = ""
    listen: list[str] = field(default_factory=list)  # every address, as the agent reports it
    extra: dict[str, Any] = field(default_factory=dict)
    # The command a user would name this process by (a uvicorn worker: its parent's, not
    # `-c --multiprocessing-fork`), and its role, which readers fill in from the process tree
    # (process_roles.identities).
    command: list[str] = field(default_factory=lambda: _own_command())
    role: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Announcement:
        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known.setdefault("command", [])  # an older agent's: never the reader's own command
        return cls(**known)


def _own_command() -> list[str]:
    from introspect.protocol.process_roles import own_command

    return own_command()


def write_announcement(announcement: Announcement, directory: Path) -> Path:
    path = announcement_path(announcement.pid, directory)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(announcement.to_json())
    os.replace(tmp, path)
    return path


def remove_announcement(pid: int, directory: Path) -> None:
    for path in (announcement_path(pid, directory), socket_path(pid, directory)):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (even one we may not signal)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _is_same_live_process(ann: Announcement) -> bool:
    """Alive, and not a new process that reused a dead agent's PID."""
    if not pid_alive(ann.pid):
        return False
    try:
        import psutil

        created = psutil.Process(ann.pid).create_time()
    except Exception:
        return True
    return created <= ann.started_at + 1.0


def list_agents(directory: Path | None = None, clean: bool = True) -> list[Announcement]:
    """Announcements of live agents, oldest first; stale entries are removed (when `clean`)."""
    directory = directory or runtime_dir()
    found: list[Announcement] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("agent-*.json")):
        try:
            ann = Announcement.from_json(path.read_text())
        except (OSError, ValueError, TypeError):
            continue
        if not _is_same_live_process(ann) or (ann.socket and not os.path.exists(ann.socket)):
            if clean:
                remove_announcement(ann.pid, directory)
            continue
        found.append(ann)
    found.sort(key=lambda a: a.started_at)
    return found
