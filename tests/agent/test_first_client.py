"""What only a client needs (the protocol messages, msgspec, the login, the request handlers,
the snapshot builders) is imported at the first connection or the first block, not by
`introspect.start()`; the first requests are still answered, under a blocked loop and in a
forked child too. Real processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

from introspect.client.connection import Client
from introspect.protocol.snapshot import BlockingEvent
from tests.agent.test_start_imports import run_python
from tests.console.support import run_piped
from tests.support.procs import AgentProcess, wait_until

# Imported by start() before issue 17's second pass; none is needed until a client connects,
# a snapshot is asked for, or the loop blocks.
CLIENT_ONLY = ("msgspec", "introspect.protocol.messages", "introspect.protocol.snapshot",
               "introspect.agent.server.clients", "introspect.agent.server.requests",
               "introspect.agent.server.handshake", "introspect.agent.server.stream",
               "introspect.agent.server.heavy", "introspect.agent.server.wire",
               "introspect.agent.snapshot_builder", "introspect.agent.queries",
               "introspect.agent.await_graph", "introspect.agent.stuck",
               "introspect.agent.exact", "introspect.agent.self_profile", "hashlib",
               "decimal", "uuid", "typing_extensions")

APP = f"""
import asyncio, json, sys, threading
import introspect

CLIENT_ONLY = {CLIENT_ONLY!r}

def commands():
    for line in sys.stdin:
        if line.strip() == "modules":
            print("modules " + json.dumps([m for m in CLIENT_ONLY if m in sys.modules]),
                  flush=True)

async def worker(i):
    await asyncio.sleep(3600)

async def main():
    introspect.start()
    print("early " + json.dumps([m for m in CLIENT_ONLY if m in sys.modules]), flush=True)
    keep = [asyncio.create_task(worker(i), name=f"worker-{{i}}") for i in range(3)]
    threading.Thread(target=commands, daemon=True).start()
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _listed(proc: AgentProcess, prefix: str) -> list[str]:
    line = proc.wait_for_line(prefix + " ")
    return json.loads(line.split(" ", 1)[1])


def test_the_server_thread_imports_what_a_client_needs_once_it_listens() -> None:
    """Not the first client: it would wait ~1 s for the imports against a saturated loop."""
    found = run_python("""
        import asyncio, json, sys, time
        import introspect

        async def main():
            introspect.start()
            wanted = {"introspect.agent.server.clients", "introspect.agent.snapshot_builder",
                      "introspect.protocol.messages", "msgspec"}
            # polled (no client ever connects): the server thread imports them; a module is
            # in sys.modules from the start of its import, so the deepest ones are waited for
            deadline = time.monotonic() + 30
            while not wanted <= set(sys.modules):
                if time.monotonic() > deadline:
                    sys.exit(f"never imported: {sorted(wanted - set(sys.modules))}")
                await asyncio.sleep(0.01)
            print(json.dumps(sorted(wanted)))

        asyncio.run(main())
    """)
    assert "msgspec" in found


def test_the_first_snapshot_stream_and_console_are_answered() -> None:
    with AgentProcess.script(APP, under_run=False, env={"INTROSPECT_CONSOLE": "1"}) as proc:
        proc.wait_for_line("ready")
        snap = proc.snapshot()
        kinds = {k.kind: k.count for k in snap.tasks.by_kind}
        assert kinds.get("__main__.worker") == 3
        with Client(str(proc.pid)).connect() as client:
            first = next(iter(client.subscribe(interval=0.2)))
            assert first.full and first.snapshot is not None
        done = run_piped(str(proc.pid), "print(6 * 7)\n")
        assert done.returncode == 0 and "42" in done.stdout, done.stderr
        proc.proc.stdin.write("modules\n")
        proc.proc.stdin.flush()
        assert "introspect.agent.server.requests" in _listed(proc, "modules")


def test_metrics_are_served_without_a_client_having_connected() -> None:
    app = APP.replace("introspect.start()", "introspect.start(metrics_port=0)").replace(
        'print("ready", flush=True)',
        'print("metrics " + introspect.get_agent().extensions["metrics"].url, flush=True)\n'
        '    print("ready", flush=True)')
    with AgentProcess.script(app, under_run=False) as proc:
        proc.wait_for_line("ready")
        url = proc.wait_for_line("metrics ").split(" ", 1)[1].strip()
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'python_asyncio_tasks{kind="__main__.worker"} 3.0' in text


BLOCKED_FROM_THE_START = """
import asyncio, time
import introspect

async def main():
    introspect.start()
    print("blocking", flush=True)  # at once: the loop never gets back to select()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # pure Python: holds the loop, not the GIL for long
        sum(range(1000))

asyncio.run(main())
"""


def test_the_first_connection_and_the_first_block_while_the_loop_is_held() -> None:
    """The server thread imports what a client needs while the loop thread spins, and the
    watchdog builds its first blocking event (importing the event structs) meanwhile."""
    with AgentProcess.script(BLOCKED_FROM_THE_START, under_run=False) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("blocking")
        with Client(str(proc.pid), timeout=5.0).connect() as client:
            snap = wait_until(
                lambda: (lambda s: s if any(isinstance(e, BlockingEvent) and e.ongoing
                                            for e in s.events) else None)(client.snapshot()),
                timeout=10, message="an ongoing blocking event")
        event = next(e for e in snap.events if isinstance(e, BlockingEvent))
        assert "app.py" in event.location and event.task is not None
        assert snap.loop.blocked_for_seconds > 0


FORK_AFTER_START = """
import asyncio, json, os, sys, time
import introspect

CLIENT_ONLY = {client_only!r}

async def worker():
    await asyncio.sleep(3600)

def child():
    async def serve():
        task = asyncio.create_task(worker())
        print("child " + json.dumps([m for m in CLIENT_ONLY if m in sys.modules]), flush=True)
        await asyncio.sleep(120)
    asyncio.run(serve())

introspect.start()
pid = os.fork()
if pid == 0:
    child()
    os._exit(0)
print(f"forked {{pid}}", flush=True)
time.sleep(120)
"""


def test_a_forked_child_imports_what_its_first_client_needs() -> None:
    source = FORK_AFTER_START.format(client_only=CLIENT_ONLY)
    with AgentProcess.script(source, under_run=False) as proc:
        child = int(proc.wait_for_line("forked ").split()[1])
        try:
            def snapshot() -> object:
                with Client(str(child), timeout=5.0).connect() as client:
                    return client.snapshot()

            snap = wait_until(snapshot, message="the forked child's agent answering")
            assert snap.node.pid == child
            assert any(k.kind == "__main__.worker" for k in snap.tasks.by_kind)
        finally:
            os.kill(child, signal.SIGKILL)


def test_snapshot_called_by_the_app_itself_works_without_a_client() -> None:
    out = subprocess.run([sys.executable, "-c", """
import asyncio, json
import introspect

async def main():
    agent = introspect.start()
    await asyncio.sleep(0)
    snap = agent.snapshot()
    print(json.dumps({"tasks": snap.tasks.total, "schema": snap.to_dict()["schema"]}))

asyncio.run(main())
"""], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["tasks"] >= 1 and got["schema"] == 1


def test_a_fork_waits_for_a_late_import_to_finish(tmp_path) -> None:
    """A module still being imported by an agent thread at a fork would stay half-made in the
    child, its import lock held by a thread the child does not have: the child's own import of
    it would hang. The fork waits for the import instead."""
    (tmp_path / "slow_mod.py").write_text(
        "import builtins\nbuiltins.STARTED.set()\nbuiltins.GATE.wait()\nVALUE = 7\n")
    out = run_python(f"""
        import builtins, json, os, signal, sys, threading
        sys.path.insert(0, {str(tmp_path)!r})
        from introspect.agent.late_imports import late_import

        builtins.STARTED, builtins.GATE = threading.Event(), threading.Event()
        importer = threading.Thread(target=late_import, args=("slow_mod",))
        importer.start()
        builtins.STARTED.wait()
        threading.Timer(0.3, builtins.GATE.set).start()
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a hang ends the child instead of the test
            import slow_mod
            os._exit(0 if slow_mod.VALUE == 7 else 1)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({{"child": os.waitstatus_to_exitcode(status)}}))
    """)
    assert out == {"child": 0}
