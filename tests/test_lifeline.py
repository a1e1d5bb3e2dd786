"""A killed test run takes its processes with it (tests/support/lifeline.py): a real pytest run
whose session fixture starts a child, a grandchild that daemonises itself and a daemonised
tmux server, killed mid-test with SIGTERM, then with SIGKILL. Its agents' runtime dir goes
with it, killed or finished, and no other run's (this one's) does."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.procs import wait_until

REPO = Path(__file__).resolve().parents[1]

# The session fixture records what it started, then the test blocks until the run is killed.
INNER_TEST = '''
import os, signal, subprocess, sys, uuid
from pathlib import Path

import pytest

OUT = Path(os.environ["LIFELINE_OUT"])
DAEMON = """
import os, signal, sys
if os.fork():
    os._exit(0)
os.setsid()  # the parent has gone: a daemon, reparented away from pytest
open(sys.argv[1], "w").write(str(os.getpid()))
signal.pause()
"""


@pytest.fixture(scope="session")
def children():
    child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                             start_new_session=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-c", DAEMON, str(OUT / "daemon.pid")], check=True)
    socket = f"lifeline-{uuid.uuid4().hex[:8]}"
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "cat"], check=True)
    tmux_pid = subprocess.run(["tmux", "-L", socket, "display-message", "-p", "#{pid}"],
                              check=True, capture_output=True, text=True).stdout.strip()
    (OUT / "tmux.pid").write_text(tmux_pid)
    (OUT / "child.pid").write_text(str(child.pid))
    (OUT / "runtime").write_text(os.environ["INTROSPECT_RUNTIME_DIR"])
    yield
    (OUT / "torn-down").write_text("yes")


def test_runs_until_killed(children):
    (OUT / "running").write_text("yes")
    if not os.environ.get("LIFELINE_FINISH"):
        signal.pause()
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has died; only its parent's wait is missing


def _inner_run(tmp_path: Path, sig: signal.Signals | None
               ) -> tuple[subprocess.CompletedProcess, list[int], Path]:
    """Start the inner run, kill it with `sig` mid-test (None: let it finish); return its
    result, its children's PIDs and its runtime dir."""
    out = tmp_path / (sig.name if sig is not None else "finished")
    out.mkdir()
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    env = {**os.environ, "LIFELINE_OUT": str(out)}
    if sig is None:
        env["LIFELINE_FINISH"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-q", "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: (out / "running").exists() or proc.poll() is not None, timeout=60,
                   message="the inner test to start")
        pids = [int((out / f"{name}.pid").read_text()) for name in ("child", "daemon", "tmux")]
        runtime = Path((out / "runtime").read_text())
        if sig is not None:
            assert proc.poll() is None, proc.communicate()[0]
            assert all(_alive(pid) for pid in pids), pids
            assert runtime.is_dir()
            proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, output), pids, runtime


def _all_gone(pids: list[int], runtime: Path) -> None:
    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=20,
               message=f"{[pid for pid in pids if _alive(pid)]} to die with the test run")
    wait_until(lambda: not runtime.exists(), timeout=20,
               message=f"the run's runtime dir {runtime} to be removed")
    assert runtime != Path(os.environ["INTROSPECT_RUNTIME_DIR"])
    assert Path(os.environ["INTROSPECT_RUNTIME_DIR"]).is_dir()  # this run's: still in use


def test_sigterm_runs_teardown_and_leaves_nothing(tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is not installed"
    result, pids, runtime = _inner_run(tmp_path, signal.SIGTERM)
    assert result.returncode == pytest.ExitCode.INTERRUPTED, result.stdout
    assert (tmp_path / "SIGTERM" / "torn-down").exists(), result.stdout
    _all_gone(pids, runtime)


def test_sigkill_leaves_nothing(tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is not installed"
    result, pids, runtime = _inner_run(tmp_path, signal.SIGKILL)
    assert result.returncode == -signal.SIGKILL
    _all_gone(pids, runtime)


def test_a_finished_run_leaves_nothing(tmp_path: Path) -> None:
    """Its daemons (not torn down by any fixture) are killed, then its runtime dir removed."""
    assert shutil.which("tmux"), "tmux is not installed"
    result, pids, runtime = _inner_run(tmp_path, None)
    assert result.returncode == pytest.ExitCode.OK, result.stdout
    _all_gone(pids, runtime)

