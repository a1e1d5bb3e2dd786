"""Turn py-spy's failures into one-line `UserError`s that say what to do.

The texts matched here are py-spy 0.4.3's own (captured on a real machine, see
tests/profiling/test_diagnose.py), e.g.::

    Error: Failed to get process executable name. Check that the process is running.
    Caused by: ... No such file or directory (os error 2)            -> no such process
    Error: Failed to find python version from target process          -> not a Python process
    Permission Denied: Try running again with elevated permissions... -> ptrace not allowed
"""

from __future__ import annotations

import os
from pathlib import Path

from introspect.errors import UserError
from introspect.textsafe import escape

YAMA_PTRACE_SCOPE = Path("/proc/sys/kernel/yama/ptrace_scope")
INSTALL_HINT = "pip install 'introspect[profile]'"
_CAP_SYS_PTRACE = 19

_PERMISSION_MARKERS = (
    "permission denied",  # "Permission Denied: Try running again with elevated permissions"
    "operation not permitted",  # EPERM from ptrace(PTRACE_SEIZE)
    "sys_ptrace capability",  # py-spy's docker hint
    "os error 13",
    "os error 1)",
)
_NO_PROCESS_MARKERS = (
    "check that the process is running",
    "no such process",
    "os error 3)",
)
_NOT_PYTHON_MARKERS = (
    "failed to find python version",
    "no python processes found",
    "failed to find _pyruntime",
    "failed to find a python interpreter",
)


def ptrace_scope(path: Path = YAMA_PTRACE_SCOPE) -> int | None:
    """The Yama ptrace scope (0 classic, 1 restricted, 2 admin-only, 3 none), None if no Yama."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def has_cap_sys_ptrace(status_path: Path = Path("/proc/self/status")) -> bool | None:
    """Whether this process has CAP_SYS_PTRACE in its effective set (None: cannot tell)."""
    try:
        for line in status_path.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def permission_advice(pid: int, *, scope: int | None = None, euid: int | None = None,
                      cap: bool | None = None) -> str:
    """One line: why attaching to `pid` is refused and what to change."""
    euid = os.geteuid() if euid is None else euid
    parts = [f"permission denied attaching to PID {pid}: py-spy needs ptrace rights over it"]
    if euid == 0 and cap is False:
        parts.append("you are root but lack CAP_SYS_PTRACE: in a container, start it with "
                     "--cap-add SYS_PTRACE")
    elif euid == 0 and cap:
        parts.append("refused even to root with CAP_SYS_PTRACE: a security module (Yama, "
                     "SELinux, AppArmor), seccomp, or a process outside this container's "
                     "reach")
    else:
        parts.append("run as the process's owner or root (`sudo introspect ...`); "
                     "in a container add --cap-add SYS_PTRACE")
    if scope == 3:
        parts.append("Yama ptrace_scope is 3 (ptrace disabled until reboot)")
    elif scope is not None and scope > 0:
        parts.append(f"Yama ptrace_scope is {scope}: as root, "
                     f"`echo 0 > {YAMA_PTRACE_SCOPE}` allows it")
    return "; ".join(parts)


def first_error_line(stderr: str) -> str:
    """py-spy's headline: the first `Error: ...` line (or the first non-empty line)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("Error:"):
            return ln[len("Error:"):].strip()
    return lines[0] if lines else ""


def _relevant(stderr: str) -> str:
    """Drop the Rust backtrace (printed when RUST_BACKTRACE is set), keep message + causes."""
    text = stderr.split("Stack backtrace:", 1)[0]
    return text.lower()


def classify(stderr: str, pid: int, *, returncode: int | None = None,
             pid_exists: bool | None = None) -> UserError:
    """Map a failed py-spy run on `pid` to the error the user should see."""
    text = _relevant(stderr)
    if any(m in text for m in _PERMISSION_MARKERS):
        return UserError(permission_advice(pid, scope=ptrace_scope(), cap=has_cap_sys_ptrace()))
    if any(m in text for m in _NO_PROCESS_MARKERS) or pid_exists is False:
        return UserError(f"no process with PID {pid} (it may have exited)")
    if any(m in text for m in _NOT_PYTHON_MARKERS):
        return UserError(f"PID {pid} does not look like a Python process "
                         "(py-spy found no Python interpreter in it)")
    if "unsupported version of python" in text:
        return UserError(f"py-spy does not support the Python version of PID {pid}: "
                         f"{escape(first_error_line(stderr))} (try upgrading py-spy)")
    if "failed to suspend process" in text:
        return UserError(f"py-spy could not pause PID {pid}: is it stopped or traced by a "
                         "debugger? (retry, or use --nonblocking)")
    if "native stack traces with the --nonblocking" in text:
        return UserError("native frames need a paused process: drop --native or --nonblocking")
    if "no stack counts found" in text:
        return UserError(f"no samples collected from PID {pid}: it was idle or exited "
                         "(a flamegraph needs at least one sample)")
    headline = escape(first_error_line(stderr)) or f"exit status {returncode}"
    return UserError(f"py-spy failed on PID {pid}: {headline}")
