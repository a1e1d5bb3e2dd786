"""Run py-spy against a process on this host: stack dumps (`dump`) and profiles (`record`).

Every failure becomes a one-line `UserError` (see `diagnose.classify`); nothing here prints.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from introspect.errors import UserError
from introspect.profiling.diagnose import INSTALL_HINT, classify
from introspect.profiling.target import pid_exists
from introspect.textsafe import escape

RecordFormat = Literal["speedscope", "flamegraph", "raw"]
RECORD_FORMATS: tuple[str, ...] = ("speedscope", "flamegraph", "raw")
Progress = Callable[[float, float], None]
"""progress(elapsed_seconds, duration_seconds), called about 10 times a second while recording."""

STARTUP_GRACE = 30.0  # seconds py-spy may take beyond --duration before we give up on it
_PATH_LIMIT = 400


@dataclass(frozen=True)
class Frame:
    name: str
    filename: str
    line: int | None
    module: str | None = None  # set for native frames (the shared object)
    short_filename: str | None = None

    @property
    def location(self) -> str:
        """`file:line function`, the project's location format (unescaped)."""
        where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        return f"{where} {self.name}"


@dataclass(frozen=True)
class ThreadStack:
    name: str | None
    thread_id: int
    os_thread_id: int | None
    active: bool
    owns_gil: bool
    frames: tuple[Frame, ...]  # innermost first, as py-spy reports them
    pid: int | None = None


@dataclass(frozen=True)
class DumpResult:
    pid: int
    threads: tuple[ThreadStack, ...]
    command: str | None = None  # the target's command line, from /proc (unescaped)


def find_pyspy() -> str:
    """Path of the py-spy executable: next to this Python first, then on PATH."""
    exe = "py-spy.exe" if os.name == "nt" else "py-spy"
    beside = Path(sys.executable).parent / exe
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    raise UserError(f"py-spy is not installed (needed for stacks and profiles without the "
                    f"agent): {INSTALL_HINT}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["RUST_BACKTRACE"] = "0"  # py-spy prints Rust backtraces with its errors otherwise
    env.pop("RUST_LOG", None)
    return env


def _check_pid(pid: int) -> None:
    if pid <= 0 or not pid_exists(pid):
        raise UserError(f"no process with PID {pid}")
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat.rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return
    if state in ("Z", "X"):
        raise UserError(f"PID {pid} has exited (zombie waiting for its parent)")


def _command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace") or None


def _check_options(native: bool, nonblocking: bool) -> None:
    if native and nonblocking:
        # py-spy: "Can't get native stack traces with the --nonblocking option."
        raise UserError("native frames need a paused process: drop --native or --nonblocking")


def _run_argv(argv: Sequence[str], executable: str | None) -> list[str]:
    return [executable or find_pyspy(), *argv]


def _spawn_error(exc: OSError, executable: str) -> UserError:
    return UserError(f"cannot run py-spy ({escape(executable, _PATH_LIMIT)}): "
                     f"{exc.strerror or exc}; {INSTALL_HINT}")


# --- dump -------------------------------------------------------------------------------------

def parse_dump_json(text: str, pid: int, command: str | None = None) -> DumpResult:
    """Parse `py-spy dump --json` output (a list of threads) into a DumpResult."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"py-spy printed something that is not JSON for PID {pid}: "
                        f"{exc.msg}") from None
    if not isinstance(data, list):
        raise UserError(f"unexpected py-spy dump output for PID {pid}: expected a list")
    threads = []
    for t in data:
        if not isinstance(t, dict):
            continue
        frames = tuple(_frame(f) for f in t.get("frames") or () if isinstance(f, dict))
        threads.append(ThreadStack(
            name=_opt_str(t.get("thread_name")),
            thread_id=_int(t.get("thread_id"), 0),
            os_thread_id=_opt_int(t.get("os_thread_id")),
            active=bool(t.get("active")),
            owns_gil=bool(t.get("owns_gil")),
            frames=frames,
            pid=_opt_int(t.get("pid")),
        ))
    return DumpResult(pid=pid, threads=tuple(threads), command=command)


def _frame(f: dict[str, Any]) -> Frame:
    line = _opt_int(f.get("line"))
    return Frame(name=str(f.get("name") or "?"), filename=str(f.get("filename") or "?"),
                 line=line if line else None, module=_opt_str(f.get("module")),
                 short_filename=_opt_str(f.get("short_filename")))


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _opt_int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _int(v: object, default: int) -> int:
    got = _opt_int(v)
    return default if got is None else got


def dump(pid: int, *, native: bool = False, timeout: float = 10, nonblocking: bool = False,
         executable: str | None = None) -> DumpResult:
    """All thread stacks of Python process `pid`, via `py-spy dump --pid PID --json`.

    `nonblocking` does not pause the target (less accurate); `executable` overrides the py-spy
    binary (tests, wrappers). Raises UserError with a one-line reason on any failure."""
    _check_options(native, nonblocking)
    _check_pid(pid)
    argv = ["dump", "--pid", str(pid), "--json"]
    if native:
        argv.append("--native")
    if nonblocking:
        argv.append("--nonblocking")
    full = _run_argv(argv, executable)
    try:
        proc = subprocess.run(full, capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"py-spy did not answer within {timeout:g} s for PID {pid} "
                        "(try again, or with --nonblocking)") from None
    except OSError as exc:
        raise _spawn_error(exc, full[0]) from None
    if proc.returncode != 0:
        raise classify(proc.stderr, pid, returncode=proc.returncode,
                       pid_exists=pid_exists(pid))
    return parse_dump_json(proc.stdout, pid, _command_line(pid))


def dump_text(result: DumpResult) -> str:
    """Render a DumpResult like `py-spy dump`: a header per thread, frames innermost first as
    `file:line function`. Everything from the target is escaped (no terminal injection)."""
    lines = []
    header = f"Process {result.pid}"
    if result.command:
        header += f": {escape(result.command, _PATH_LIMIT)}"
    lines.append(header)
    for t in result.threads:
        state = "active" if t.active else "idle"
        if t.owns_gil:
            state += "+gil"
        tid = t.os_thread_id if t.os_thread_id is not None else f"0x{t.thread_id:x}"
        name = f' "{escape(t.name)}"' if t.name is not None else ""
        pid_note = f" [pid {t.pid}]" if t.pid is not None and t.pid != result.pid else ""
        lines.append(f"Thread {tid} ({state}):{name}{pid_note}")
        if not t.frames:
            lines.append("    (no Python frames)")
        for f in t.frames:
            where = escape(f.filename, _PATH_LIMIT)
            if f.line is not None:
                where += f":{f.line}"
            lines.append(f"    {where} {escape(f.name)}")
    return "\n".join(lines) + "\n"


# --- record -----------------------------------------------------------------------------------

def _check_output(output: Path) -> None:
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {escape(str(output), _PATH_LIMIT)}: "
                        f"no such directory {escape(str(parent), _PATH_LIMIT)}")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {escape(str(output), _PATH_LIMIT)}: "
                        "directory not writable")
    if output.is_dir():
        raise UserError(f"cannot write {escape(str(output), _PATH_LIMIT)}: it is a directory")


def record(pid: int, duration: float, fmt: RecordFormat, output: str | os.PathLike[str], *,
           rate: int = 100, progress: Progress | None = None, subprocesses: bool = False,
           nonblocking: bool = False, native: bool = False, by_function: bool = False,
           executable: str | None = None) -> Path:
    """Sample `pid` for `duration` seconds at `rate` Hz with `py-spy record`, write `output` in
    `fmt` (speedscope JSON, flamegraph SVG, or raw collapsed stacks) and return its path.

    `progress(elapsed, duration)` is called while it runs. `by_function` aggregates samples by
    the function's first line (`--function`) instead of the current line. Ctrl-C stops the
    recording early and keeps what py-spy wrote. Raises UserError on any failure."""
    if fmt not in RECORD_FORMATS:
        raise UserError(f"unknown profile format {fmt!r}: choose from {', '.join(RECORD_FORMATS)}")
    if not duration > 0:
        raise UserError("--duration must be more than 0 seconds")
    if not 0 < rate <= 10_000:
        raise UserError("--rate must be between 1 and 10000 samples per second")
    _check_options(native, nonblocking)
    _check_pid(pid)
    out = Path(output)
    _check_output(out)
    seconds = max(1, math.ceil(duration))  # py-spy takes whole seconds only
    argv = ["record", "--pid", str(pid), "--format", fmt, "--output", str(out),
            "--duration", str(seconds), "--rate", str(rate)]
    for flag, on in (("--subprocesses", subprocesses), ("--nonblocking", nonblocking),
                     ("--native", native), ("--function", by_function)):
        if on:
            argv.append(flag)
    full = _run_argv(argv, executable)
    try:
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                env=_env())
    except OSError as exc:
        raise _spawn_error(exc, full[0]) from None
    start = time.monotonic()
    deadline = start + seconds + STARTUP_GRACE
    stderr = ""
    try:
        while True:
            try:
                _stdout, stderr = proc.communicate(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if progress is not None:
                    progress(min(now - start, float(seconds)), float(seconds))
                if now > deadline:
                    proc.kill()
                    proc.communicate()
                    raise UserError(f"py-spy did not finish recording PID {pid} within "
                                    f"{seconds + STARTUP_GRACE:g} s") from None
    except KeyboardInterrupt:
        # Ctrl-C: py-spy (same terminal) got SIGINT too and writes what it has; make sure.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        if not out.exists():
            raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 and not (proc.returncode < 0 and out.exists()):
        raise classify(stderr, pid, returncode=proc.returncode, pid_exists=pid_exists(pid))
    if not out.exists():
        raise UserError(f"py-spy finished but wrote no profile for PID {pid}")
    if progress is not None:
        # py-spy ended on its own: the recording covered the whole duration (its clock, not
        # ours, decides; under load it can finish a little before our elapsed time says).
        interrupted = proc.returncode < 0
        elapsed = min(time.monotonic() - start, float(seconds))
        progress(elapsed if interrupted else float(seconds), float(seconds))
    return out
