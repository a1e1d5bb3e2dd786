"""Every process a test run starts dies with the run, however pytest dies (SIGTERM, SIGKILL,
Ctrl-C twice): leaked agents and Prometheus servers otherwise run on for as long as nobody looks.

The root conftest calls `hold()` once. It marks the run's environment with a unique token,
which every process the suite starts inherits — children, grandchildren (the app under
`introspect run`), new sessions, daemonised tmux servers and their panes alike — and starts a
watcher outside pytest's process group. When pytest exits the watcher kills every process
whose environment carries the token, then removes the run's own directory if it was given
one (the agents' runtime dir: nothing that could still use it is left by then), then exits.

Why not PR_SET_PDEATHSIG in each spawner: it reaches only direct children (not the app under
`introspect run`, nor a tmux server, which daemonises), fires when the forking *thread* exits,
and would need the same preexec code at every one of the suite's spawn sites.

Standard library only: the watcher runs this file as a script.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

TOKEN_VARIABLE = "INTROSPECT_TEST_SESSION"
SWEEP_DEADLINE = 10.0  # seconds to chase processes that fork while being killed


def hold(directory: str | None = None) -> str:
    """Mark this process's environment and arm a watcher for it; returns the token.
    `directory`: this run's own, removed once the run and its processes are gone.

    Returns once the watcher is armed, so nothing started afterwards can escape it."""
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[TOKEN_VARIABLE] = token
    watcher_env = {k: v for k, v in os.environ.items() if k != TOKEN_VARIABLE}
    # The watcher forks and its parent exits at once (see _main): waiting for that leaves no
    # child of ours running, and means the watcher already holds a pidfd on this process.
    subprocess.run([sys.executable, "-I", str(Path(__file__).resolve()), str(os.getpid()), token,
                    *([directory] if directory else [])],
                   env=watcher_env, start_new_session=True, check=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    return token


def marked_processes(token: str) -> list[int]:
    """PIDs of the processes whose environment carries `token` (zombies have none)."""
    needle = f"\0{TOKEN_VARIABLE}={token}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path("/proc", entry, "environ").read_bytes()
        except OSError:  # gone meanwhile, or another user's
            continue
        if needle in b"\0" + environ:
            found.append(int(entry))
    return found


def sweep(token: str, deadline: float = SWEEP_DEADLINE) -> bool:
    """SIGKILL every marked process until none is left (True) or the deadline passes."""
    me = os.getpid()
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        victims = [pid for pid in marked_processes(token) if pid != me]
        if not victims:
            return True
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)  # let the kills land before looking again
    return False


def remove_directory(directory: str) -> None:
    """Remove the run's directory: a real one of this user's (never a symlink's target)."""
    try:
        info = os.lstat(directory)
    except OSError:
        return
    if os.path.isabs(directory) and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
        shutil.rmtree(directory, ignore_errors=True)


def _main(pid: int, token: str, directory: str | None = None) -> None:
    # Ctrl-C and a SIGTERM to pytest's group must not take the watcher down with the run.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = None
    if os.fork():
        os._exit(0)  # hold() returns: the watcher is armed
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # don't keep pytest's output pipe (a CI log, `| tee`) open
        os.dup2(devnull, fd)
    if pidfd is not None:
        select.select([pidfd], [], [])
    try:
        gone = sweep(token)
    except OSError:  # no /proc (a bare chroot): nothing to be done
        gone = False
    if directory is not None and gone:  # (left for a process that outlived the sweep)
        remove_directory(directory)


if __name__ == "__main__":
    _main(int(sys.argv[1]), sys.argv[2], *sys.argv[3:4])
