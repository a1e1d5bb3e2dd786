"""Where agents announce themselves on this host, and how clients find them.

Each agent owns `<runtime dir>/agent-<pid>.sock` (mode 0600) and `agent-<pid>.json` (what `ps`
shows). The runtime dir is per user: `$XDG_RUNTIME_DIR/introspect` or `/tmp/introspect-<uid>`,
mode 0700, and must be owned by us: another user can create `/tmp/introspect-<uid>` first, so
the agent then falls back to a private `mkdtemp` dir, and clients use only directories and
sockets that are ours. Entries of dead processes are removed when listed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from introspect.textsafe import escape


class RuntimeDirError(Exception):
    pass


log = logging.getLogger("introspect.agent")
FALLBACK_PREFIX = "introspect-{uid}-"  # private dirs made by mkdtemp when the usual one is taken
_fallback: dict[int, Path] = {}  # pid → this process's private fallback dir


def runtime_dir(create: bool = False) -> Path:
    """The per-user directory of sockets and announcements. With `create` (the agent), it is
    made without following symlinks and checked through its descriptor; if it is unusable
    (another owner, a symlink, not a directory) a private directory is used instead and one
    log line says so: the host app never fails to start because of it."""
    path = configured_runtime_dir()
    if not create:
        return path
    if os.getpid() in _fallback:
        return _fallback[os.getpid()]
    try:
        _make_private_dir(path)
        return path
    except (OSError, RuntimeDirError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    import tempfile

    private = Path(tempfile.mkdtemp(prefix=FALLBACK_PREFIX.format(uid=os.getuid())))
    _fallback[os.getpid()] = private
    log.warning("introspect: runtime dir %s is not usable (%s); using the private dir %s",
                escape(str(path), None), escape(reason, 200), private)
    return private


def configured_runtime_dir() -> Path:
    override = os.environ.get("INTROSPECT_RUNTIME_DIR")
    if override:
        return Path(override)
    if os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "introspect"
    return Path(_system_temp_dir()) / f"introspect-{os.getuid()}"


def _system_temp_dir() -> str:
    """`tempfile.gettempdir()`'s choice, without importing tempfile (with shutil, bz2 and lzma
    it is ~900 objects in the host's heap for every full collection to walk): $TMPDIR, $TEMP,
    $TMP, then /tmp, /var/tmp, /usr/tmp, the first writable directory, else the working one.
    Not an app's own `tempfile.tempdir`: the agent and the CLI must find the same place."""
    names = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    for candidate in [*names, "/tmp", "/var/tmp", "/usr/tmp"]:
        if candidate and os.path.isdir(candidate) and \
                os.access(candidate, os.W_OK | os.X_OK):
            return os.path.abspath(candidate)
    return os.getcwd()


def _make_private_dir(path: Path) -> None:
    """mkdir 0700, or accept an existing dir only if, seen through a descriptor opened without
    following symlinks, it is a directory we own (a group/other mode is tightened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise RuntimeDirError("it is a symlink or not a directory") from None
        raise
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            raise RuntimeDirError(f"it belongs to uid {info.st_uid}")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def untrusted_reason(directory: Path) -> str | None:
    """Why a client must not use agents announced in `directory` (None: it may). Ours, not
    writable by others, a real directory: nobody else can have put a socket or an
    announcement there."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return "it is a symlink or not a directory"
    if info.st_uid != os.getuid():
        return f"it belongs to uid {info.st_uid}, not to you (uid {os.getuid()})"
    if stat.S_IMODE(info.st_mode) & 0o022:
        return f"its mode {stat.S_IMODE(info.st_mode):o} lets others write there"
    return None


def agent_dirs() -> list[Path]:
    """Where clients look for agents: the runtime dir, and (when it is not configured
    explicitly) the private fallback dirs agents made because it was taken — only those
    that are ours and private."""
    found = [configured_runtime_dir()]
    if not os.environ.get("INTROSPECT_RUNTIME_DIR"):
        pattern = FALLBACK_PREFIX.format(uid=os.getuid()) + "*"
        found += sorted(p for p in Path(_system_temp_dir()).glob(pattern)
                        if untrusted_reason(p) is None)
    return found


def owned_socket(path: Path) -> bool:
    """A socket file of ours (a socket someone else created can't be an agent of ours)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid()


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
    """Announcements of live agents, oldest first; stale entries are removed (when `clean`).
    Only from directories that are ours and private, and only agents whose socket is ours."""
    found: list[Announcement] = []
    for where in [directory] if directory else agent_dirs():
        if untrusted_reason(where) is None and where.is_dir():
            found += _announcements_in(where, clean)
    found.sort(key=lambda a: a.started_at)
    return found


def _announcements_in(directory: Path, clean: bool) -> list[Announcement]:
    found = []
    for path in sorted(directory.glob("agent-*.json")):
        try:
            ann = Announcement.from_json(path.read_text())
        except (OSError, ValueError, TypeError):
            continue
        if not _is_same_live_process(ann) or (ann.socket and not os.path.exists(ann.socket)):
            if clean:
                remove_announcement(ann.pid, directory)
            continue
        if ann.socket and not owned_socket(Path(ann.socket)):
            continue
        found.append(ann)
    return found
