"""Discovery: `introspect ps` lists every agent-enabled process of this user (stale entries are
cleaned), a fork child and multiprocessing pool workers (fork and spawn) get their own agent,
show up with their parent and can be snapshotted; TCP agents are found by name in targets.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from introspect.client.connection import Client
from introspect.protocol import discovery
from tests.attach.support import CONTROL_TOKEN, start_host, tcp_target
from tests.support.procs import wait_until

FORKING_APP = """
import os, time
print("parent ready", flush=True)
child = os.fork()
if child == 0:
    time.sleep(120)
    os._exit(0)
print(f"child {child}", flush=True)
time.sleep(120)
"""

POOL_APP = """
import multiprocessing as mp, os, sys, time

def work(x):
    return os.getpid()

if __name__ == "__main__":
    ctx = mp.get_context(os.environ["POOL_METHOD"])
    with ctx.Pool(2) as pool:
        pool.map(work, range(4))
        print("workers " + " ".join(str(p.pid) for p in pool._pool), flush=True)
        print("ready", flush=True)
        time.sleep(120)
"""


def ps_json() -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "introspect", "ps", "--json"],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def listed(pid: int) -> dict | None:
    return next((a for a in ps_json() if a["pid"] == pid), None)


def assert_own_agent(pid: int, parent: int) -> None:
    entry = wait_until(lambda: listed(pid), message=f"`introspect ps` listing {pid}")
    assert entry["ppid"] == parent
    with Client(str(pid)) as client:
        snap = client.snapshot()
    assert snap.node.pid == pid and snap.node.ppid == parent


def test_fork_child_gets_its_own_agent():
    from tests.support.procs import AgentProcess

    with AgentProcess.script(FORKING_APP) as proc:
        line = proc.wait_for_line("child ")
        child = int(line.split()[1])
        try:
            assert_own_agent(child, proc.pid)
            assert_own_agent(proc.pid, os.getpid())  # the parent still answers as itself
            text = subprocess.run([sys.executable, "-m", "introspect", "ps"],
                                  capture_output=True, text=True, timeout=30).stdout
            assert f"{proc.pid}*" in text  # the child's parent is marked as an agent too
        finally:
            os.kill(child, 9)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_get_their_own_agents(method: str):
    directory = Path(tempfile.mkdtemp(prefix="introspect-pool-"))
    fixed = directory / "main.sock"  # inherited by every worker: none may steal it
    with start_host(["--listen", f"unix:{fixed}"], env={"POOL_METHOD": method},
                    source=POOL_APP) as proc:
        workers = [int(p) for p in proc.wait_for_line("workers ").split()[1:]]
        assert len(workers) == 2
        for worker in workers:
            assert_own_agent(worker, proc.pid)
            ann = discovery.Announcement(**listed(worker))
            assert Path(ann.socket) != fixed and ann.socket.endswith(f"agent-{worker}.sock")
        with Client(f"unix:{fixed}") as client:  # the fixed address still reaches the parent
            assert client.snapshot().node.pid == proc.pid
        assert listed(proc.pid)["socket"] == str(fixed)


def test_stale_entries_are_cleaned_never_listed(runtime_dir: str):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    directory = Path(runtime_dir)
    stale = discovery.Announcement(pid=dead.pid, ppid=os.getpid(), argv=["gone.py"],
                                   started_at=0.0, socket=str(directory / f"agent-{dead.pid}.sock"))
    discovery.write_announcement(stale, directory)
    (directory / f"agent-{dead.pid}.sock").touch()
    with start_host() as live:
        live.wait_for_agent()
        pids = {a["pid"] for a in ps_json()}
        assert live.pid in pids and dead.pid not in pids
        assert not discovery.announcement_path(dead.pid, directory).exists()
        assert not (directory / f"agent-{dead.pid}.sock").exists()
    # a process killed without cleanup is cleaned from the listing too
    assert live.pid not in {a["pid"] for a in ps_json()}


def test_named_tcp_targets_from_targets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    token_file = tmp_path / "svc.token"
    token_file.write_text(CONTROL_TOKEN)
    with start_host(["--listen", "tcp://127.0.0.1:0", "--token-file", str(token_file)]) as proc:
        address = tcp_target(proc).removeprefix("tcp://")
        targets = tmp_path / "targets.toml"
        targets.write_text(f'[targets.billing]\naddress = "{address}"\n'
                           f'token_file = "{token_file}"\n')
        env = {**os.environ, "INTROSPECT_TARGETS_FILE": str(targets)}
        env.pop("INTROSPECT_TOKEN", None)
        out = subprocess.run([sys.executable, "-m", "introspect", "snapshot", "billing",
                              "--json"], capture_output=True, text=True, timeout=30, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["node"]["pid"] == proc.pid
        out = subprocess.run([sys.executable, "-m", "introspect", "snapshot", "payroll"],
                             capture_output=True, text=True, timeout=30, env=env)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode != 0 and len(lines) == 1 and "targets.toml" in lines[0], out
