"""The service never fails because of the agent: uvicorn `--reload` with metrics on keeps
answering across a code change; gunicorn's sync and gthread workers (with `--preload` too) and
a ProcessPoolExecutor each get their own /metrics port instead of dying on the configured one."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.support import BIN, agents, free_ports, get, start, workers_of, write_app
from tests.support.procs import wait_until

WSGI_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''

POOL_APP = '''
import concurrent.futures, os, time

def work(n):
    time.sleep(0.2)
    return os.getpid()

if __name__ == "__main__":
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        pids = set(pool.map(work, range(8)))
        print("pool", *sorted(pids), flush=True)
        input()  # held open until the test ends
'''


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def test_reload_answers_before_and_after_a_code_change(tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    app_port, metrics_port = free_ports(2)
    argv = [str(BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(app_port),
            "--reload", "--reload-dir", str(tmp_path)]
    with start(argv, tmp_path, metrics_port) as proc:
        url = f"http://127.0.0.1:{app_port}/"
        wait_until(lambda: '"one"' in get(url)[1], timeout=60, message="version one")
        [server] = workers_of(proc.pid, 1)
        assert "python_asyncio_tasks" in _scrape(server["metrics"])
        write_app(tmp_path, "two")
        wait_until(lambda: '"two"' in get(url)[1], timeout=60, interval=0.2,
                   message="version two after the reload")
        assert proc.proc.poll() is None
        assert "already in use" not in "".join(proc.stderr)


@pytest.mark.parametrize("extra", [["-k", "sync"], ["-k", "gthread", "--threads", "2"],
                                   ["-k", "sync", "--preload"]],
                         ids=["sync", "gthread", "sync-preload"])
def test_gunicorn_wsgi_workers_serve_their_own_metrics(extra: list[str], tmp_path: Path) -> None:
    (tmp_path / "wsgi.py").write_text(WSGI_APP)
    app_port, metrics_port = free_ports(2)
    argv = [str(BIN / "gunicorn"), *extra, "-w", "2", "-b", f"127.0.0.1:{app_port}",
            "--no-control-socket", "wsgi:app"]
    with start(argv, tmp_path, metrics_port) as proc:
        workers = workers_of(proc.pid, 2)
        wait_until(lambda: get(f"http://127.0.0.1:{app_port}/")[1] == "ok", timeout=30,
                   message="the app answers")
        ports = {w["metrics"] for w in workers}
        assert len(ports) == 2 and f":{metrics_port}/" not in " ".join(ports)
        listed = json.loads(_scrape(f"http://127.0.0.1:{metrics_port}/sd"))
        assert {int(g["labels"]["pid"]) for g in listed} == {proc.pid, *(w["pid"] for w in
                                                                          workers)}
        for worker in workers:
            assert "introspect_agent_scrapes_total" in _scrape(worker["metrics"])


def test_gunicorn_hup_replaces_workers_and_their_metrics(tmp_path: Path) -> None:
    """HUP: gunicorn forks new workers and retires the old ones; the new ones serve /metrics
    on ports of their own and /sd lists exactly the live ones."""
    (tmp_path / "wsgi.py").write_text(WSGI_APP)
    app_port, metrics_port = free_ports(2)
    argv = [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{app_port}",
            "--no-control-socket", "wsgi:app"]
    with start(argv, tmp_path, metrics_port) as proc:
        old = {w["pid"] for w in workers_of(proc.pid, 2)}
        os.kill(proc.pid, signal.SIGHUP)

        def replaced() -> list[dict] | None:
            now = [a for a in agents() if a["ppid"] == proc.pid and a["metrics"]]
            return now if len(now) == 2 and not old & {a["pid"] for a in now} else None

        new = wait_until(replaced, timeout=60, interval=0.2, message="two new workers")
        assert get(f"http://127.0.0.1:{app_port}/")[1] == "ok"
        for worker in new:
            assert "introspect_agent_scrapes_total" in _scrape(worker["metrics"])
        listed = json.loads(_scrape(f"http://127.0.0.1:{metrics_port}/sd"))
        assert {int(g["labels"]["pid"]) for g in listed} == {proc.pid, *(w["pid"] for w in new)}


COUNTING_WSGI_APP = '''
from prometheus_client import Counter

HITS = Counter("app_hits", "requests served")


def app(environ, start_response):
    HITS.inc()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def test_multiprocess_dir_app_metrics_once_runtime_per_worker(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR: the app's counters, summed over workers, on the configured
    port only; each worker's port has its own runtime metrics and not the app's sum."""
    (tmp_path / "wsgi.py").write_text(COUNTING_WSGI_APP)
    (tmp_path / "mp").mkdir()
    app_port, metrics_port = free_ports(2)
    argv = [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{app_port}",
            "--no-control-socket", "wsgi:app"]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp")}
    with start(argv, tmp_path, metrics_port, env) as proc:
        workers = workers_of(proc.pid, 2)
        for _ in range(10):
            assert get(f"http://127.0.0.1:{app_port}/")[1] == "ok"
        main = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(lambda: "app_hits_total 10.0" in _scrape(main), timeout=20,
                   message="the app's counter summed over the workers")
        for worker in workers:
            text = _scrape(worker["metrics"])
            assert "app_hits" not in text
            assert "introspect_agent_scrapes_total" in text


def test_process_pool_children_run_and_serve_metrics(tmp_path: Path) -> None:
    (tmp_path / "pool.py").write_text(POOL_APP)
    (metrics_port,) = free_ports(1)
    with start([sys.executable, "pool.py"], tmp_path, metrics_port) as proc:
        pids = [int(p) for p in proc.wait_for_line("pool ", timeout=60).split()[1:]]
        children = workers_of(proc.pid, 2)
        assert {c["pid"] for c in children} == set(pids)
        for child in children:
            assert "introspect_agent_scrapes_total" in _scrape(child["metrics"])
        assert proc.proc.poll() is None

