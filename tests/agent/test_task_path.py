"""The per-task path (collectors/tasks.py, _tasks_accel.c): counts by kind exact under churn,
crashes reported without marking them retrieved, parents, tasks made by `asyncio.Task(...)`,
no attribute set on any task, and finished tasks released — on the C path and on the
pure-Python fallback (the accelerator blocked from import). Crossversion (tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHURN = r'''
import asyncio, gc, json, sys, weakref
if {pure}:
    sys.modules["introspect.agent._tasks_accel"] = None  # the pure-Python fallback
import introspect
from introspect.agent.collectors import tasks as task_mod

async def ok():
    await asyncio.sleep(0)

async def fails(n):
    await asyncio.sleep(0)
    raise ValueError(n)

async def parked(stop):
    await stop.wait()

async def parent_of(out):
    child = asyncio.create_task(ok())
    out.append(child)
    out.append(task_mod.meta_of(child).parent)  # a meta lives while its task is live
    await child

async def main():
    agent = introspect.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    long_lived = [asyncio.create_task(parked(stop)) for _ in range(50)]
    retrieved = unretrieved = 0
    for batch in range(12):
        oks = [asyncio.create_task(ok()) for _ in range(700)]
        bad = [asyncio.create_task(fails(i)) for i in range(5)]
        doomed = [asyncio.create_task(parked(stop)) for _ in range(3)]
        await asyncio.sleep(0)
        for task in doomed:
            task.cancel()
        await asyncio.gather(*oks, *doomed, return_exceptions=True)
        await asyncio.wait(bad)
        for task in bad[:2]:  # retrieved: asyncio stays quiet about these
            task.exception()
        retrieved += 2
        unretrieved += 3
        del bad
    outside = asyncio.Task(ok())  # not through the loop's factory: not counted
    await outside
    children = []
    parent = asyncio.create_task(parent_of(children))
    parent_seq = task_mod.meta_of(parent).seq
    await parent
    child_parent = children.pop()
    stop.set()
    await asyncio.gather(*long_lived)
    live, created, finished = agent.tasks.counts()  # on the loop thread: young swept
    ref = weakref.ref(asyncio.create_task(ok()))  # finished young, not awaited by anyone
    while ref() is not None and not ref().done():
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # its done callbacks, if any, have run
    agent.tasks.counts()
    gc.collect()
    print(json.dumps({{
        "accelerated": task_mod._accel is not None,
        "live": {{k.rsplit(".", 1)[-1]: v for k, v in live.items()}},
        "created": {{k.rsplit(".", 1)[-1]: v for k, v in created.items()}},
        "finished": {{"/".join((k.rsplit(".", 1)[-1], o)): v for (k, o), v in finished.items()}},
        "errors": sum(agent.errors.counts().values()),
        "outside_meta": task_mod.meta_of(outside) is None,
        "parent_ok": child_parent == parent_seq,
        "no_task_dict": all(not getattr(t, "__dict__", None) for t in long_lived + children),
        "released": ref() is None,
        "retrieved": retrieved, "unretrieved": unretrieved,
    }}), flush=True)
    introspect.stop()

asyncio.run(main())
'''


def _run(pure: bool) -> tuple[dict, str]:
    out = subprocess.run([sys.executable, "-c", CHURN.format(pure=pure)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
def test_counts_by_kind_are_exact_under_churn(pure: bool) -> None:
    truth, stderr = _run(pure)
    assert truth["accelerated"] is (not pure)
    assert truth["created"]["ok"] == 12 * 700 + 1  # + the child of parent_of
    assert truth["created"]["fails"] == 12 * 5
    assert truth["created"]["parked"] == 50 + 12 * 3
    assert truth["finished"] == {"ok/ok": 12 * 700 + 1, "fails/error": 60,
                                 "parked/cancelled": 36, "parked/ok": 50,
                                 "parent_of/ok": 1} | {
        k: v for k, v in truth["finished"].items() if k.startswith("main/")}
    assert truth["live"]["ok"] == truth["live"]["fails"] == truth["live"]["parked"] == 0
    assert truth["errors"] == 60  # every crash reported, retrieved or not
    # ...without marking any retrieved: asyncio still reports exactly the unretrieved ones
    assert stderr.count("Task exception was never retrieved") == truth["unretrieved"]
    assert truth["outside_meta"] and "main" in truth["created"]
    assert truth["parent_ok"]
    assert truth["no_task_dict"]
    assert truth["released"]


def test_the_c_task_path_is_built() -> None:
    # A silent ImportError would leave every service on the ~0.5x pure-Python task path.
    from introspect.agent.collectors import tasks

    assert tasks._accel is not None


CREATED_AT = r'''
import asyncio, json, sys
if {pure}:
    sys.modules["introspect.agent._tasks_accel"] = None
import introspect
from introspect.agent.collectors import tasks as task_mod
from introspect.agent.queries import task_detail

async def idle(stop):  # def
    await stop.wait()

def line_of(marker):
    return next(i for i, text in enumerate(open(__file__).read().splitlines(), 1)
                if text.rstrip().endswith("# " + marker))

async def main():
    agent = introspect.start(task_created_at={created_at})
    stop = asyncio.Event()
    seen = {{}}
    plain = asyncio.create_task(idle(stop))  # plain
    seen["plain"] = task_detail(agent, task_mod.meta_of(plain).seq).created_at
    async with asyncio.TaskGroup() as group:
        grouped = group.create_task(idle(stop))  # group
        seen["group"] = task_detail(agent, task_mod.meta_of(grouped).seq).created_at
        gathered = asyncio.gather(idle(stop))  # gather
        child = gathered._children[0]
        seen["gather"] = task_detail(agent, task_mod.meta_of(child).seq).created_at
        stop.set()
    await asyncio.gather(plain, gathered)
    truth = lambda k: f"{{__file__}}:{{line_of(k if {created_at} else 'def')}}"
    print(json.dumps({{k: [v, truth(k)] for k, v in seen.items()}}))

asyncio.run(main())
'''


@pytest.mark.parametrize("created_at", [True, False], ids=["recorded", "off"])
@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
def test_created_at_is_the_user_line_that_created_the_task(pure: bool, created_at: bool,
                                                           tmp_path) -> None:
    # INTROSPECT_TASK_CREATED_AT=0 (no frame walk per task): the coroutine's `def` line.
    script = tmp_path / "creator.py"
    script.write_text(CREATED_AT.format(pure=pure, created_at=created_at))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(seen) == {"plain", "group", "gather"}
    for shown, truth in seen.values():
        assert shown == truth
