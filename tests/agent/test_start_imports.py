"""What `introspect.start()` adds to the host's heap: at defaults it imports none of the modules
only an optional feature needs (every object it adds is walked by each of the host's full GC
collections), and each feature still works once used. Real processes throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support.procs import AgentProcess, wait_until

# Imported at start before issue 17; each belongs to a feature the defaults do not use.
DEFERRED = ("prometheus_client", "http.server", "email", "wsgiref", "socketserver",
            "multiprocessing", "concurrent.futures.process", "ctypes", "psutil", "codeop",
            "introspect.metrics.prometheus", "introspect.agent.console.session",
            "tempfile")


def run_python(source: str, env: dict[str, str] | None = None) -> dict:
    """Run `source` in a fresh interpreter; its last stdout line is JSON."""
    import os

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_start_at_defaults_imports_no_optional_feature() -> None:
    found = run_python(f"""
        import asyncio, json, sys
        import introspect

        async def main():
            introspect.start()
            await asyncio.sleep(0)
            print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))

        asyncio.run(main())
    """)
    assert found == []


def test_without_a_runtime_dir_setting_start_finds_the_temp_dir_tempfile_would() -> None:
    """A service user has no XDG_RUNTIME_DIR: the agent falls back to the system temp dir,
    chosen as tempfile.gettempdir() chooses it, without importing tempfile."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for tmpdir in (tmp, "/nonexistent-introspect-tmp", ""):
            env = {k: v for k, v in os.environ.items()
                   if k not in ("INTROSPECT_RUNTIME_DIR", "XDG_RUNTIME_DIR", "TEMP", "TMP")}
            env["TMPDIR"] = tmpdir
            done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
                import asyncio, json, sys
                import introspect
                from introspect.protocol import discovery

                async def main():
                    introspect.start()
                    await asyncio.sleep(0)
                    loaded = "tempfile" in sys.modules
                    socket = str(discovery.socket_path(__import__("os").getpid()))
                    import tempfile
                    print(json.dumps({"loaded": loaded, "ours": discovery._system_temp_dir(),
                                      "tempfile": tempfile.gettempdir(), "socket": socket}))
                    introspect.stop()

                asyncio.run(main())
            """)], capture_output=True, text=True, timeout=60, env=env)
            assert done.returncode == 0, done.stderr[-3000:]
            found = json.loads(done.stdout.strip().splitlines()[-1])
            assert found["loaded"] is False
            assert found["ours"] == found["tempfile"], (tmpdir, found)
            assert found["socket"].startswith(os.path.join(found["tempfile"], "introspect-"))


APP_IMPORTS_PROMETHEUS_LATE = """
import asyncio, json, sys
import introspect

async def worker(stop):
    await stop.wait()

async def main():
    introspect.start()
    assert "prometheus_client" not in sys.modules
    stop = asyncio.Event()
    task = asyncio.create_task(worker(stop))
    await asyncio.sleep(0)
    from prometheus_client import generate_latest  # the app's own, after start()
    text = generate_latest().decode()
    introspect.stop()
    after_stop = generate_latest().decode()
    stop.set()
    await task
    print(json.dumps({"text": text, "after_stop": after_stop}))

asyncio.run(main())
"""


def test_an_app_importing_prometheus_client_after_start_gets_our_series() -> None:
    out = run_python(APP_IMPORTS_PROMETHEUS_LATE)
    assert 'python_asyncio_tasks{kind="__main__.worker"} 1.0' in out["text"]
    assert "python_asyncio_tasks_created_total" in out["text"]
    assert "python_asyncio_" not in out["after_stop"]  # stop() leaves the registry as it was


def test_an_app_that_imported_prometheus_client_before_start_gets_our_series() -> None:
    out = run_python("""
        import asyncio, json
        from prometheus_client import generate_latest
        import introspect

        async def main():
            introspect.start()
            await asyncio.sleep(0)
            print(json.dumps({"text": generate_latest().decode()}))

        asyncio.run(main())
    """)
    assert 'python_asyncio_tasks{kind="__main__.main"} 1.0' in out["text"]


def test_a_thread_importing_prometheus_client_under_a_busy_loop_gets_our_series() -> None:
    """The import (and our registration inside it) runs in the app's importing thread while
    the loop thread is busy in pure Python and the agent's threads sample it."""
    out = run_python("""
        import asyncio, json, threading, time
        import introspect

        def scrape(result):
            from prometheus_client import generate_latest
            result.append(generate_latest().decode())

        async def main():
            introspect.start()
            await asyncio.sleep(0)  # the tasks that existed before start() are adopted
            result = []
            thread = threading.Thread(target=scrape, args=(result,))
            thread.start()
            while thread.is_alive():  # the loop thread never yields until the scrape is done
                sum(range(1000))
            print(json.dumps({"text": result[0]}))

        asyncio.run(main())
    """)
    assert 'python_asyncio_tasks{kind="__main__.main"} 1.0' in out["text"]


def test_multiprocessing_queues_and_process_pools_made_after_start_are_discovered() -> None:
    source = """
        import asyncio, sys
        import introspect

        async def main():
            introspect.start()
            assert "multiprocessing" not in sys.modules
            import concurrent.futures, multiprocessing
            jobs = multiprocessing.Queue()
            for i in range(3):
                jobs.put(i)
            pool = concurrent.futures.ProcessPoolExecutor(max_workers=2)
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            pool.shutdown()

        asyncio.run(main())
    """
    with AgentProcess.script(source, under_run=False) as proc:
        proc.wait_for_line("ready")

        def discovered() -> tuple | None:
            snap = proc.snapshot()
            queue = next((q for q in snap.queues if q.type == "multiprocessing"), None)
            pool = next((e for e in snap.executors if e.type == "process"), None)
            return (queue, pool) if queue is not None and pool is not None else None

        queue, pool = wait_until(discovered, message="the multiprocessing queue and the pool")
        assert queue.length == 3 and "app.py" in queue.created_at
        assert pool.max_workers == 2
        snap = proc.snapshot()
        assert snap.process.rss_bytes > 0 and snap.process.threads >= 1  # psutil, on demand


def test_import_hooks_never_break_an_import_and_leave_meta_path_when_done(tmp_path) -> None:
    (tmp_path / "watched_ok.py").write_text("VALUE = 1\n")
    (tmp_path / "watched_broken.py").write_text("raise RuntimeError('broken at import')\n")
    out = run_python(f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from introspect.agent import import_hooks

        seen = []
        def boom(module):
            raise ValueError("a failing callback")
        import_hooks.when_imported("watched_ok", boom)
        import_hooks.when_imported("watched_ok", lambda m: seen.append(m.VALUE))
        import_hooks.when_imported("watched_broken", lambda m: seen.append("broken"))
        cancel = import_hooks.when_imported("never_imported", lambda m: seen.append("never"))
        import watched_ok
        try:
            import watched_broken
        except RuntimeError:
            pass
        still_waiting = import_hooks.waiting()
        cancel()
        import_hooks.when_imported("json", lambda m: seen.append("already"))  # at once
        print(json.dumps({{"seen": seen, "loader": type(watched_ok.__loader__).__name__,
                          "waiting": still_waiting, "after": import_hooks.waiting(),
                          "finder_in_meta_path": any(type(f).__name__ == "_Finder"
                                                     for f in sys.meta_path)}}))
    """)
    assert out["seen"] == [1, "already"]  # the failing callback did not stop the next one
    assert out["loader"] == "SourceFileLoader"  # the module keeps its real loader
    assert out["waiting"] == {"watched_broken": 1, "never_imported": 1}
    assert out["after"] == {"watched_broken": 1}
    assert out["finder_in_meta_path"]  # still waiting for watched_broken


def test_stop_cancels_every_wait_and_removes_the_finder() -> None:
    out = run_python("""
        import json, sys
        import introspect
        from introspect.agent import import_hooks

        introspect.start()
        during = import_hooks.waiting()
        introspect.stop()
        print(json.dumps({"during": during, "after": import_hooks.waiting(),
                          "finder": any(type(f).__name__ == "_Finder" for f in sys.meta_path)}))
    """)
    assert set(out["during"]) == {"prometheus_client", "multiprocessing.queues",
                                  "concurrent.futures.process"}
    assert out["after"] == {} and not out["finder"]


def test_a_module_another_thread_is_still_importing_is_waited_for(tmp_path) -> None:
    """when_imported() on a module half-executed by another thread waits for the import to
    finish (importlib's module lock) instead of calling back with the half-made module."""
    (tmp_path / "slow_mod.py").write_text("import builtins\nbuiltins.GATE.wait()\nVALUE = 7\n")
    out = run_python(f"""
        import builtins, json, sys, threading
        sys.path.insert(0, {str(tmp_path)!r})
        from introspect.agent import import_hooks

        builtins.GATE = threading.Event()
        importer = threading.Thread(target=lambda: __import__("slow_mod"))
        importer.start()
        while "slow_mod" not in sys.modules:
            pass
        seen = []
        waiter = threading.Thread(target=lambda: import_hooks.when_imported(
            "slow_mod", lambda m: seen.append(getattr(m, "VALUE", None))))
        waiter.start()

        def in_import_lock():
            frame = sys._current_frames().get(waiter.ident)
            while frame is not None:
                if frame.f_code.co_name in ("_lock_unlock_module", "acquire"):
                    return True
                frame = frame.f_back
            return False

        while not in_import_lock() and waiter.is_alive():
            pass
        builtins.GATE.set()
        importer.join()
        waiter.join()
        print(json.dumps(seen))
    """)
    assert out == [7]
