"""A worker forked the way gunicorn forks (a bare os.fork in a process with an agent): its
`dump`/snapshot shows its main thread with its own native id, not the parent's, and it is
listed as a worker of the parent under the parent's command."""

from __future__ import annotations

import os
import signal

from introspect.client.connection import Client
from tests.deploy.support import agents
from tests.support.procs import AgentProcess, wait_until

FORKING = r'''
import asyncio, os, time

pid = os.fork()
if pid == 0:
    print(f"worker {os.getpid()}", flush=True)
    asyncio.run(asyncio.sleep(120))
    os._exit(0)
time.sleep(120)
'''


def test_forked_worker_main_thread_and_identity() -> None:
    with AgentProcess.script(FORKING) as proc:
        worker = int(proc.wait_for_line("worker ").split()[1])
        try:
            def listed() -> dict | None:
                return next((a for a in agents() if a["pid"] == worker), None)

            entry = wait_until(listed, timeout=20, message="the worker's own agent")
            assert entry["role"] == "worker" and entry["ppid"] == proc.pid
            assert entry["command"][-1].endswith("app.py")
            def threads() -> list:
                with Client(str(worker), timeout=5.0).connect() as client:
                    return client.snapshot().threads

            threads = wait_until(threads, message="the worker's snapshot")
            [main] = [t for t in threads if t.name == "MainThread"]
            assert main.native_id == worker  # Linux: the main thread's id is the pid
        finally:
            os.kill(worker, signal.SIGKILL)
