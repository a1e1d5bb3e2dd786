"""What differs between CPython 3.11 and 3.14 must not show: eager tasks counted and named like
any other, the agent starting under `-W error::DeprecationWarning` (3.14 deprecates loop
policies), exact accounting's self-check accepting this Python's loop and refusing a copy that
behaves differently. Part of the crossversion subset (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from introspect.agent import exact, exact_selfcheck
from tests.support.procs import AgentProcess, wait_until

EAGER = r'''
import asyncio, json, sys
import introspect

async def quick(n):
    return n  # finishes inside its creation when started eagerly

async def parked(stop, children):
    children.append(asyncio.create_task(child(stop)))  # created during the eager first step
    await stop.wait()

async def child(stop):
    await stop.wait()

async def main():
    factory = getattr(asyncio, "eager_task_factory", None)  # 3.12+
    if factory is not None:
        asyncio.get_running_loop().set_task_factory(factory)
    stop = asyncio.Event()
    children = []
    quick_tasks = [asyncio.create_task(quick(i)) for i in range(10)]
    done_at_creation = sum(t.done() for t in quick_tasks)
    parked_tasks = [asyncio.create_task(parked(stop, children), name=f"parked-{i}")
                    for i in range(6)]
    await asyncio.gather(*quick_tasks)
    await asyncio.sleep(0.1)
    print("ready " + json.dumps({"eager": factory is not None,
                                 "done_at_creation": done_at_creation,
                                 "children": len(children)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    stop.set()

asyncio.run(main())
'''


def test_eager_tasks_are_counted_and_named_like_any_other() -> None:
    with AgentProcess.script(EAGER) as proc:
        truth = json.loads(proc.wait_for_line("ready ").split("ready ", 1)[1])
        assert truth["eager"] is (sys.version_info >= (3, 12))
        # Eager tasks finish inside create_task; scheduled ones never do.
        assert truth["done_at_creation"] == (10 if truth["eager"] else 0)
        assert truth["children"] == 6

        def counted() -> dict[str, object] | None:
            kinds = {k.kind: k for k in proc.snapshot(top_tasks=50).tasks.by_kind}
            quick = kinds.get("__main__.quick")
            return kinds if quick is not None and quick.finished_ok == 10 else None

        kinds = wait_until(counted, message="the 10 quick tasks counted as finished")
        quick = kinds["__main__.quick"]
        assert (quick.count, quick.created, quick.finished_ok) == (0, 10, 10)
        assert (kinds["__main__.parked"].count, kinds["__main__.parked"].created) == (6, 6)
        assert kinds["__main__.child"].count == 6
        rows = {r.name: r for r in proc.snapshot(top_tasks=50).tasks.top}
        assert rows["parked-2"].state == "waiting"
        assert "parked" in rows["parked-2"].location and "Event.wait" in rows["parked-2"].awaiting


STRICT_START = r'''
import asyncio, json
import introspect

agent = introspect.start()

async def worker():
    await asyncio.sleep(3600)

async def main():
    asyncio.create_task(worker())
    await asyncio.sleep(0)
    snap = agent.snapshot()
    kinds = {k.kind: k.count for k in snap.tasks.by_kind}
    print("result " + json.dumps({"observed": agent.loop is asyncio.get_running_loop(),
                                  "workers": kinds.get("__main__.worker")}), flush=True)

asyncio.run(main())
introspect.stop()
'''


def test_the_agent_starts_and_hooks_the_loop_with_deprecation_warnings_as_errors(
        tmp_path) -> None:
    # 3.14 warns on every loop-policy call; the agent must not make one there.
    app = tmp_path / "app.py"
    app.write_text(STRICT_START)
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", str(app)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("result "))
    assert json.loads(line.split(" ", 1)[1]) == {"observed": True, "workers": 1}


def test_exact_accounting_self_check_accepts_this_pythons_loop() -> None:
    assert exact_selfcheck._compare() == (True, "available")
    loop = asyncio.new_event_loop()
    try:
        assert exact.exact_available(loop) == (True, "available")
    finally:
        loop.close()


@pytest.mark.parametrize("impl", ["c", "python"])
def test_exact_accounting_self_check_refuses_a_copy_that_behaves_differently(
        monkeypatch: pytest.MonkeyPatch, impl: str) -> None:
    original = exact._prepare

    def reordering(loop, mark):  # a stale copy: runs the newest ready handle first
        original(loop, mark)
        if len(loop._ready) > 1:
            loop._ready.rotate(1)

    monkeypatch.setattr(exact, "_prepare", reordering)
    trace, _, _ = exact_selfcheck._drive(impl)
    reference, _, _ = exact_selfcheck._drive(None)
    assert trace != reference
    ok, why = exact_selfcheck._compare()
    assert not ok and "behaves differently" in why
