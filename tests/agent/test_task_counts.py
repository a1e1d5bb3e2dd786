"""Counts by kind (collectors/tasks.py; kept in C by _tasks_accel.c, in dicts by the
pure-Python fallback) against ground truth: exact under churn with the default and the eager
task factory and under uvloop, tasks made by `asyncio.Task(...)` left out, tasks that existed
before the agent adopted, every reading taken from another thread consistent (created = live +
finished, kind by kind) and a finished task seen from another thread, across fork, and a
coroutine finished or closed before its task was made still counted under its kind.
Crossversion (tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHURN = r'''
import asyncio, json, sys, threading, time
if {pure}:
    sys.modules["introspect.agent._tasks_accel"] = None  # the pure-Python fallback
import introspect
from introspect.agent.collectors import tasks as task_mod

BATCHES = 10

async def quick():  # finishes at its first step: inside its creation, under the eager factory
    return None

async def ok():
    await asyncio.sleep(0)

async def fails():
    await asyncio.sleep(0)
    raise ValueError("later")

async def fails_at_once():
    raise ValueError("at once")

async def parked(stop):
    await stop.wait()

def short(reading):
    live, created, finished = reading
    name = lambda kind: kind.rsplit(".", 1)[-1]
    return ({{name(k): v for k, v in live.items()}}, {{name(k): v for k, v in created.items()}},
            {{name(k) + "/" + o: v for (k, o), v in finished.items()}})

def consistent(reading):
    live, created, finished = reading
    return all(live.get(kind, 0) + sum(n for (k, _o), n in finished.items() if k == kind) == made
               for kind, made in created.items())

async def main():
    agent = introspect.start()
    loop = asyncio.get_running_loop()
    if {eager}:
        loop.set_task_factory(asyncio.eager_task_factory)  # the app's: ours chains to it
    readings, reading = [], threading.Event()
    def reader():  # another thread reads all along
        while not reading.is_set():
            readings.append(agent.tasks.counts())
            time.sleep(0.001)
    thread = threading.Thread(target=reader)
    thread.start()
    stop = asyncio.Event()
    long_lived = [asyncio.create_task(parked(stop)) for _ in range(20)]
    for _ in range(BATCHES):
        tasks = [asyncio.create_task(quick()) for _ in range(300)]
        tasks += [asyncio.ensure_future(ok()) for _ in range(300)]
        tasks += [loop.create_task(fails()) for _ in range(3)]
        tasks += [asyncio.create_task(fails_at_once()) for _ in range(3)]
        doomed = [asyncio.create_task(parked(stop)) for _ in range(2)]
        await asyncio.sleep(0)
        for task in doomed:
            task.cancel()
        results = await asyncio.gather(*tasks, *doomed, return_exceptions=True)
        assert sum(isinstance(r, ValueError) for r in results) == 6
    outside = asyncio.Task(ok())  # not through the loop's factory: not counted
    await outside
    stop.set()
    await asyncio.gather(*long_lived)
    reading.set()
    thread.join()
    last = asyncio.create_task(ok())
    await last
    # Finished, and read from another thread while the loop runs: seen within a probe beat.
    def until_seen():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live, created, finished = short(agent.tasks.counts())
            if finished.get("ok/ok") == created.get("ok") == BATCHES * 300 + 1:
                return True
            time.sleep(0.01)
        return False
    seen = await loop.run_in_executor(None, until_seen)
    live, created, finished = short(agent.tasks.counts())
    print(json.dumps({{
        "accelerated": task_mod._accel is not None,
        "live": live, "created": created, "finished": finished, "seen": seen,
        "consistent": sum(map(consistent, readings)), "readings": len(readings),
        "errors": sum(agent.errors.counts().values()),
        "outside": task_mod.meta_of(outside) is None,
    }}), flush=True)
    introspect.stop()

if {uvloop}:
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
'''

SETUPS = [("asyncio", False)] + ([("asyncio", True)] if sys.version_info >= (3, 12) else []) \
    + [("uvloop", False)]


def _run(source: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
@pytest.mark.parametrize(("loop", "eager"), SETUPS,
                         ids=[f"{loop}{'-eager' if eager else ''}" for loop, eager in SETUPS])
def test_counts_by_kind_exact_and_consistent_from_another_thread(pure: bool, loop: str,
                                                                  eager: bool) -> None:
    truth = json.loads(_run(CHURN.format(pure=pure, eager=eager, uvloop=loop == "uvloop"))[-1])
    assert truth["accelerated"] is (not pure)
    batches = 10
    main = "wrapper" if loop == "uvloop" else "main"  # uvloop.run wraps the main coroutine
    created = {"quick": batches * 300, "ok": batches * 300 + 1, "fails": batches * 3,
               "fails_at_once": batches * 3, "parked": 20 + batches * 2, main: 1}
    assert truth["created"] == created  # the main task existed before the agent: adopted
    assert truth["finished"] == {"quick/ok": batches * 300, "ok/ok": batches * 300 + 1,
                                 "fails/error": batches * 3, "fails_at_once/error": batches * 3,
                                 "parked/cancelled": batches * 2, "parked/ok": 20}
    assert truth["live"] == dict.fromkeys(created, 0) | {main: 1}
    assert truth["errors"] == batches * 6  # every crash reported, eager ones too
    assert truth["outside"]
    assert truth["seen"]  # a finished task, read from another thread
    assert truth["readings"] > 0
    if not pure:  # one C call: never half an update (the fallback copies three dicts)
        assert truth["consistent"] == truth["readings"]


FORK = r'''
import asyncio, json, os, sys
if {pure}:
    sys.modules["introspect.agent._tasks_accel"] = None
import introspect

async def ok():
    await asyncio.sleep(0)

async def churn(n, read=True):
    await asyncio.gather(*[asyncio.create_task(ok()) for _ in range(n)])
    if not read:
        return None
    live, created, finished = introspect.get_agent().tasks.counts()  # loop thread: exact
    pick = lambda counts: {{k.rsplit(".", 1)[-1]: v for k, v in counts.items()
                           if k.endswith(".ok")}}
    return pick(live), pick(created), {{k[0].rsplit(".", 1)[-1] + "/" + k[1]: v
                                        for k, v in finished.items() if k[0].endswith(".ok")}}

introspect.start()
asyncio.run(churn(500, read=False))  # C path: finished, most not swept yet at the fork
pid = os.fork()
if pid == 0:
    print("child " + json.dumps(asyncio.run(churn(300))), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent " + json.dumps(asyncio.run(churn(200))), flush=True)
introspect.stop()
'''


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
def test_counts_carry_over_a_fork_exactly_once(pure: bool) -> None:
    lines = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1])
             for line in _run(FORK.format(pure=pure)) if line.startswith(("child ", "parent "))}
    # The child inherits the counts so far and adds its own; each task accounted once.
    assert lines["child"] == [{"ok": 0}, {"ok": 800}, {"ok/ok": 800}]
    assert lines["parent"] == [{"ok": 0}, {"ok": 700}, {"ok/ok": 700}]


SPENT = r'''
import asyncio, json, sys
if {pure}:
    sys.modules["introspect.agent._tasks_accel"] = None
import introspect

async def quick():
    return None

async def main():
    agent = introspect.start()
    loop = asyncio.get_running_loop()
    finished, closed = quick(), quick()
    try:
        finished.send(None)
    except StopIteration:
        pass
    closed.close()
    results = await asyncio.gather(loop.create_task(finished), loop.create_task(closed),
                                   loop.create_task(quick()), return_exceptions=True)
    live, created, finished = agent.tasks.counts()
    name = lambda kind: kind.rsplit(".", 1)[-1]
    print(json.dumps({{
        "results": [type(r).__name__ for r in results],
        "created": {{name(k): v for k, v in created.items()}},
        "finished": {{name(k) + "/" + o: v for (k, o), v in finished.items()}},
    }}), flush=True)
    introspect.stop()

asyncio.run(main())
'''


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
def test_a_spent_coroutine_handed_to_create_task_is_counted_under_its_kind(pure: bool) -> None:
    # Finished or closed before its task exists: its kind still comes from its code object.
    truth = json.loads(_run(SPENT.format(pure=pure))[-1])
    assert truth["results"] == ["RuntimeError", "RuntimeError", "NoneType"]
    assert truth["created"] == {"quick": 3, "main": 1}
    assert truth["finished"] == {"quick/error": 2, "quick/ok": 1}
