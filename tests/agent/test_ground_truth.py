"""A program that knows what it created; the agent's snapshot must agree exactly."""

from __future__ import annotations

import json

from tests.support.procs import AgentProcess, wait_until

GROUND_TRUTH = r'''
import asyncio, collections, concurrent.futures, gc, json, multiprocessing, queue, sys
import threading
import introspect

async def idle_worker(stop):
    await stop.wait()

async def short_job():
    return 1

async def doomed():
    raise ValueError("ground truth 42")

def blocked_job(event):
    event.wait()

async def main():
    stop = asyncio.Event()
    workers = [asyncio.create_task(idle_worker(stop), name=f"idle-{i}") for i in range(25)]
    await asyncio.gather(*[asyncio.create_task(short_job()) for _ in range(5)])
    crash = asyncio.create_task(doomed())
    await asyncio.wait([crash])
    crash.exception()  # retrieved by the "supervisor": still a crash report

    mailbox = asyncio.Queue()
    for i in range(7):
        mailbox.put_nowait(i)
    bounded = asyncio.Queue(maxsize=2)
    bounded.put_nowait(1); bounded.put_nowait(2)
    blocked_putter = asyncio.create_task(bounded.put(3))
    thread_q = queue.Queue(maxsize=10)
    for i in range(3):
        thread_q.put(i)
    simple = queue.SimpleQueue()
    simple.put("a"); simple.put("b")
    mp_queue = multiprocessing.Queue()
    for i in range(4):
        mp_queue.put(i)
    backlog = introspect.watch(collections.deque([1, 2, 3, 4, 5, 6], maxlen=50), name="backlog")
    await asyncio.get_running_loop().run_in_executor(None, int)  # the loop's default executor

    release = threading.Event()
    parked = [threading.Thread(target=release.wait, name=f"parked-{i}", daemon=True)
              for i in range(3)]
    for t in parked:
        t.start()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="gt-pool")
    jobs = [pool.submit(blocked_job, release) for _ in range(2)]

    def thread_crash():
        raise RuntimeError("thread boom")
    t = threading.Thread(target=thread_crash, name="crasher")
    t.start(); t.join()

    gc.disable()
    for _ in range(5):
        gc.collect()
    stats = gc.get_stats()
    await asyncio.sleep(0.2)  # let the putter block
    print("ready " + json.dumps({"gc": [s["collections"] for s in stats]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    release.set()
    stop.set()
    await asyncio.gather(*workers)
    blocked_putter.cancel()
    pool.shutdown()

asyncio.run(main())
'''


def test_snapshot_agrees_with_ground_truth():
    with AgentProcess.script(GROUND_TRUTH) as proc:
        line = proc.wait_for_line("ready ")
        truth = json.loads(line.split("ready ", 1)[1])
        snap = proc.snapshot(top_tasks=100)
        kinds = {k.kind: k for k in snap.tasks.by_kind}

        assert kinds["__main__.idle_worker"].count == 25
        assert kinds["__main__.idle_worker"].created == 25
        # a kind whose tasks all finished reports 0, not nothing
        assert kinds["__main__.short_job"].count == 0
        assert kinds["__main__.short_job"].finished_ok == 5
        assert kinds["__main__.doomed"].count == 0
        assert kinds["__main__.doomed"].finished_error == 1

        names = {row.name for row in snap.tasks.top}
        assert {f"idle-{i}" for i in range(25)} <= names
        idle = next(r for r in snap.tasks.top if r.name == "idle-3")
        assert idle.kind == "__main__.idle_worker"
        assert idle.state == "waiting"
        assert "idle_worker" in idle.location and "app.py" in idle.location
        assert "Event.wait" in idle.awaiting

        queues = {(q.type, q.length, q.capacity): q for q in snap.queues}
        mailbox = queues[("asyncio", 7, 0)]
        assert mailbox.name.endswith(".py:" + mailbox.name.rsplit(":", 1)[1])
        assert "app.py" in mailbox.created_at
        assert mailbox.bound_to == "main.mailbox"  # a local of the coroutine that made it
        bounded = queues[("asyncio", 2, 2)]
        assert bounded.putters == 1
        assert ("thread", 3, 10) in queues
        assert ("simple", 2, 0) in queues
        assert ("multiprocessing", 4, 0) in queues
        assert "app.py" in queues[("multiprocessing", 4, 0)].created_at
        watched = next(q for q in snap.queues if q.name == "backlog")
        assert (watched.length, watched.capacity, watched.watched) == (6, 50, True)
        lengths = [q.length for q in snap.queues]
        assert lengths == sorted(lengths, reverse=True), "largest backlog first"

        thread_names = {t.name for t in snap.threads}
        assert {"parked-0", "parked-1", "parked-2", "MainThread"} <= thread_names
        assert any(t.is_loop and t.name == "MainThread" for t in snap.threads)
        assert any(t.is_agent for t in snap.threads)
        parked = next(t for t in snap.threads if t.name == "parked-1")
        assert parked.daemon and parked.native_id

        pool = next(e for e in snap.executors if e.name == "gt-pool")
        assert (pool.workers, pool.max_workers, pool.busy) == (2, 3, 2)
        default = next(e for e in snap.executors if e.name == "asyncio-default")
        assert default.workers == 1 and default.busy == 1  # the stdin reader below

        assert snap.gc.collections == truth["gc"]

        errors = snap.errors.recent
        crash = next(e for e in errors if e.type == "ValueError")
        assert crash.source == "task"
        assert crash.message == "ground truth 42"
        assert crash.kind == "__main__.doomed"
        assert crash.retrieved is True
        assert "doomed" in crash.where and "ValueError: ground truth 42" in crash.traceback
        thread_err = next(e for e in errors if e.type == "RuntimeError")
        assert thread_err.source == "thread" and thread_err.thread == "crasher"

        assert snap.process.threads >= 6
        assert snap.process.rss_bytes > 1_000_000
        assert snap.node.pid == proc.pid
        assert snap.loop.running

        proc.proc.stdin.write("go\n")
        proc.proc.stdin.flush()
        assert proc.proc.wait(20) == 0


UNRETRIEVED = r'''
import asyncio, gc
async def lost():
    raise KeyError("never looked at")
async def main():
    t = asyncio.create_task(lost())
    await asyncio.sleep(0.05)
    del t
    gc.collect()
    print("ready", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
'''


def test_unretrieved_task_exception_is_marked_and_still_logged_by_asyncio():
    with AgentProcess.script(UNRETRIEVED) as proc:
        proc.wait_for_line("ready")
        snap = proc.snapshot()
        report = next(e for e in snap.errors.recent if e.type == "KeyError")
        assert report.retrieved is False
        assert report.source == "task"
        # asyncio's own report still reaches stderr: the app's behaviour is unchanged
        proc.wait_for_line("Task exception was never retrieved")
        assert snap.errors.total == 1


def test_snapshot_json_has_the_product_schema():
    src = "import asyncio\nasync def main():\n    print('ready', flush=True)\n" \
          "    await asyncio.sleep(60)\nasyncio.run(main())\n"
    with AgentProcess.script(src) as proc:
        proc.wait_for_line("ready")
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-m", "introspect", "snapshot", str(proc.pid),
                              "--json"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["schema"] == 1
        for key, fields in {
            "node": ["pid", "argv", "hostname", "python", "started_at"],
            "process": ["uptime_seconds", "cpu_seconds", "rss_bytes", "open_fds", "threads",
                        "children"],
            "loop": ["running", "lag_seconds", "lag_p99_seconds", "ready", "scheduled",
                     "blocked_for_seconds"],
            "tasks": ["total", "by_kind", "top"],
            "gc": ["collections", "collected", "uncollectable", "pause_seconds_total",
                   "pause_max_seconds"],
            "errors": ["total", "recent"],
        }.items():
            assert set(fields) <= set(data[key]), key
        assert isinstance(data["queues"], list) and isinstance(data["threads"], list)
        assert isinstance(data["events"], list)
        row = data["tasks"]["top"][0]
        assert set(row) >= {"id", "name", "kind", "state", "age_seconds", "location",
                            "awaiting", "parent"}
        text = subprocess.run([sys.executable, "-m", "introspect", "snapshot", str(proc.pid)],
                              capture_output=True, text=True, timeout=30)
        assert text.returncode == 0
        assert "TASKS" in text.stdout and "__main__.main" in text.stdout


def test_spawn_tree_parent_is_recorded():
    src = r'''
import asyncio
async def child():
    await asyncio.sleep(60)
async def parent():
    c = asyncio.create_task(child(), name="the-child")
    await c
async def main():
    asyncio.create_task(parent(), name="the-parent")
    print("ready", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
'''
    with AgentProcess.script(src) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            snap = wait_until(lambda: (lambda s: s if any(r.name == "the-child"
                                                          for r in s.tasks.top) else None)(
                client.snapshot()))
        rows = {r.name: r for r in snap.tasks.top}
        assert rows["the-child"].parent == rows["the-parent"].id
