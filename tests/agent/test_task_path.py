"""The per-task path (collectors/tasks.py, _tasks_accel.c): counts by kind exact under churn,
crashes reported without marking them retrieved, parents, tasks made by `asyncio.Task(...)`,
no attribute set on any task, and finished tasks released (within a few new tasks, without
waiting for a lag-probe beat) — on the C path and on the
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


# No agent, so no lag-probe beat: what releases a finished task here is the task factory
# looking at the oldest young tasks at each new one (C path), or the done callback (pure).
RELEASE = r'''
import asyncio, gc, json, sys, weakref
if {pure}:
    sys.modules["introspect.agent._tasks_accel"] = None  # the pure-Python fallback
from introspect.agent.collectors import tasks as task_mod

async def ok():
    await asyncio.sleep(0)

async def parked(stop):
    await stop.wait()

async def handler():  # a request: a few steps, then done
    for _ in range(3):
        await asyncio.sleep(0)

async def main():
    errors = []
    collector = task_mod.TaskCollector(lambda *a: None, lambda *a: errors.append(a))
    loop = asyncio.get_running_loop()
    loop.set_task_factory(collector.make_factory(None))  # no agent: no lag-probe beat, no flush
    stop = asyncio.Event()
    ahead = [asyncio.create_task(parked(stop)) for _ in range(10)]  # pending, older
    task = asyncio.create_task(ok())
    await task
    ref = weakref.ref(task)
    del task
    await asyncio.sleep(0)  # the wake-up that resumed us held it too
    held = ref() is not None
    creations = 0
    while ref() is not None and creations < 100:
        ahead.append(asyncio.create_task(parked(stop)))  # no loop iteration in between
        creations += 1
    # Request/response churn, 16 at a time: finished tasks still alive, at each creation.
    alive = weakref.WeakSet()
    most_held = 0
    async def connection():
        nonlocal most_held
        for round in range(200):
            request = asyncio.create_task(handler())
            alive.add(request)
            if round >= 50:  # once the tasks created before are gone from the ring
                most_held = max(most_held, sum(t.done() for t in alive))
            await request
            del request
    await asyncio.gather(*[connection() for _ in range(16)])
    # A long-pending task leaves the ring (done callback) and is accounted when it ends.
    long_stop = asyncio.Event()
    long_task = asyncio.create_task(parked(long_stop))
    seq = task_mod.meta_of(long_task).seq
    for _ in range(3):
        await asyncio.gather(*[asyncio.create_task(ok()) for _ in range(1000)])
    long_stop.set()
    await long_task
    await asyncio.sleep(0)  # its done callback has run
    long_accounted = seq not in collector.registry
    # More pending tasks than the ring holds: all accounted when they end.
    crowd_stop = asyncio.Event()
    crowd = [asyncio.create_task(parked(crowd_stop)) for _ in range(3000)]
    young_most = getattr(collector._on_done_callback, "young", 0)
    crowd_stop.set()
    stop.set()
    await asyncio.gather(*crowd, *ahead)
    await asyncio.sleep(0)
    meta_facts = {{}}
    if task_mod._accel is not None:  # TaskMeta, not a GC object, unlinks itself when dropped
        meta_facts["gc_type"] = bool(task_mod.TaskMeta.__flags__ & (1 << 14))  # HAVE_GC
        target = asyncio.create_task(ok())
        before = weakref.getweakrefs(target)
        extra = task_mod.TaskMeta(target)
        del extra
        meta_facts["unlinked"] = weakref.getweakrefs(target) == before
        died = []
        watcher = weakref.ref(target, lambda _ref: died.append(True))
        await target
        del target
        await asyncio.sleep(0)
        collector.flush()  # off the young ring
        gc.collect()
        meta_facts["target_died"] = died == [True] and watcher() is None
        for bad in ((int,), (asyncio.current_task(), print)):
            try:
                task_mod.TaskMeta(*bad)
            except TypeError:
                meta_facts.setdefault("refused", 0)
                meta_facts["refused"] += 1
    live, created, finished = collector.counts()
    short = lambda kind: kind.rsplit(".", 1)[-1]
    print(json.dumps({{
        "accelerated": task_mod._accel is not None,
        "held_until_next": held, "creations_to_release": creations, "most_held": most_held,
        "long_accounted": long_accounted, "young_most": young_most,
        "meta": meta_facts,
        "live": {{short(k): v for k, v in live.items()}},
        "created": {{short(k): v for k, v in created.items()}},
        "finished": {{short(k) + "/" + o: v for (k, o), v in finished.items()}},
        "errors": len(errors),
    }}), flush=True)

asyncio.run(main())
'''


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
def test_finished_tasks_are_released_within_a_few_creations(pure: bool) -> None:
    out = subprocess.run([sys.executable, "-c", RELEASE.format(pure=pure)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    truth = json.loads(out.stdout.strip().splitlines()[-1])
    assert truth["accelerated"] is (not pure)
    # Finished behind 10 pending tasks: released within as many new tasks (and the one that
    # finds it), with no beat (the C path holds it until a new task looks at it; until 1024
    # new tasks or a beat before).
    assert truth["held_until_next"] is (not pure)
    assert truth["creations_to_release"] <= 10 + 1
    # A task per request, 16 at a time: no more finished tasks alive than without the agent
    # (each connection's last request, still referenced by the wake-up that resumed it).
    assert truth["most_held"] <= 16
    assert truth["long_accounted"]  # long-pending: left the ring, accounted when it ended
    assert truth["young_most"] <= 1024  # more pending tasks than the ring holds
    made = {"parked": 10 + truth["creations_to_release"] + 1 + 3000, "ok": 3001,
            "connection": 16, "handler": 3200}
    if not pure:
        made["ok"] += 1  # the TaskMeta checks' task
        assert truth["meta"] == {"gc_type": False, "unlinked": True, "target_died": True,
                                 "refused": 2}
    assert truth["created"] == made
    assert truth["live"] == dict.fromkeys(made, 0)
    assert truth["finished"] == {f"{kind}/ok": n for kind, n in made.items()}
    assert truth["errors"] == 0


# A KeyboardInterrupt raised while the factory looks at an older young task (here from a
# task subclass's done(), on the C path) goes on to the code creating the task, as any
# KeyboardInterrupt does; no task is lost to the counts.
INTERRUPTED = r'''
import asyncio, json
from introspect.agent.collectors import tasks as task_mod

trip = [False]

class Touchy(asyncio.Task):
    def done(self):
        if trip[0]:
            trip[0] = False
            raise KeyboardInterrupt
        return super().done()

def app_factory(loop, coro, **kwargs):
    return Touchy(coro, loop=loop, **kwargs)

async def ok():
    await asyncio.sleep(0)

async def main():
    errors = []
    collector = task_mod.TaskCollector(lambda *a: None, lambda *a: errors.append(a))
    loop = asyncio.get_running_loop()
    loop.set_task_factory(collector.make_factory(app_factory))
    first = asyncio.create_task(ok())
    trip[0] = True
    interrupted = False
    try:
        asyncio.create_task(ok())  # looks at `first`: its done() raises
    except KeyboardInterrupt:
        interrupted = True
    await first
    for _ in range(3):
        await asyncio.sleep(0)  # the second task runs anyway: it was scheduled
    live, created, finished = collector.counts()  # the loop thread: every young task looked at
    short = lambda kind: kind.rsplit(".", 1)[-1]
    print(json.dumps({
        "interrupted": interrupted, "errors": len(errors),
        "created": {short(k): v for k, v in created.items()},
        "live": {short(k): v for k, v in live.items()},
        "finished": {short(k) + "/" + o: v for (k, o), v in finished.items()},
    }))

asyncio.run(main())
'''


def test_a_keyboard_interrupt_in_the_incremental_sweep_goes_on_and_loses_no_task() -> None:
    out = subprocess.run([sys.executable, "-c", INTERRUPTED], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    truth = json.loads(out.stdout.strip().splitlines()[-1])
    assert truth["interrupted"] and truth["errors"] == 0
    assert truth["created"] == {"ok": 2} and truth["live"] == {"ok": 0}
    assert truth["finished"] == {"ok/ok": 2}
    assert "Task was destroyed but it is pending" not in out.stderr


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
        made = []  # from a function the loop calls back: the loop's own code is its caller
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: made.append(asyncio.ensure_future(idle(stop))))  # callback
        while not made:
            await asyncio.sleep(0)
        seen["callback"] = task_detail(agent, task_mod.meta_of(made[0]).seq).created_at
        # asyncio called back from C: the walk crosses the interpreter's entry frame (3.12+:
        # a record of its own, owned by the C stack)
        mapped = list(map(asyncio.ensure_future, [idle(stop)]))  # through C
        seen["through C"] = task_detail(agent, task_mod.meta_of(mapped[0]).seq).created_at
        if sys.version_info >= (3, 12):  # the app's eager factory: ours chains to it
            loop.set_task_factory(asyncio.eager_task_factory)
        eager = asyncio.create_task(idle(stop))  # eager
        seen["eager"] = task_detail(agent, task_mod.meta_of(eager).seq).created_at
        stop.set()
    await asyncio.gather(plain, gathered, made[0], mapped[0], eager)
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
    assert set(seen) == {"plain", "group", "gather", "callback", "through C", "eager"}
    for shown, truth in seen.values():
        assert shown == truth
