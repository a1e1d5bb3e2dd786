"""The agent's run-time state leaves the collector's generations too, and comes back at stop()
(issue 17: a full collection of the app walks the app's heap, not the agent's objects). Ground
truth from real interpreters: `gc.get_objects()` (what the collector walks) and the C lists'
own counts. Where the collector cannot settle anything (3.14's incremental collector) the same
scripts check that nothing moves and nothing breaks (crossversion)."""

from __future__ import annotations

import pytest

from tests.agent.test_start_imports import run_python

pytestmark = pytest.mark.crossversion

# A host that has run its own workload once (its heap as a service's), then the agent started,
# settled, and run under the same workload.
PRELUDE = """
    import asyncio, gc, json, os, sys, time, weakref
    import introspect
    from introspect.agent import permanent, _gc_accel

    SETTLES = bool(_gc_accel.AVAILABLE)

    async def noop():
        pass

    async def churn(tasks=2000, queues=50):
        await asyncio.gather(*[asyncio.ensure_future(noop()) for _ in range(tasks)])
        made = [asyncio.Queue() for _ in range(queues)]
        for q in made:
            q.put_nowait(1)
        del made

    def settle_again(agent):
        deadline = time.monotonic() + 30
        while (moved := permanent.settle_runtime(agent)) < 0:  # a collection was running
            if time.monotonic() > deadline:
                sys.exit("settle_runtime never got past a collection")
        return moved

    async def wait_settled(agent):
        deadline = time.monotonic() + 30
        while SETTLES and _gc_accel.runtime_count() == 0:  # the server thread's pass
            if time.monotonic() > deadline:
                sys.exit("the agent's run-time state was never settled")
            await asyncio.sleep(0.01)
"""


def test_a_settled_agent_adds_few_objects_to_the_generations() -> None:
    found = run_python(PRELUDE + """
    async def main():
        await churn()
        gc.collect()
        before = len(gc.get_objects())
        agent = introspect.start()
        await wait_settled(agent)
        await churn()
        settle_again(agent)  # as the server thread does every 30 s
        gc.collect()
        gens = {id(o) for o in gc.get_objects()}
        app_queue = asyncio.Queue()
        print(json.dumps({
            "settles": SETTLES,
            "added": len(gens) - before,
            "runtime": _gc_accel.runtime_count(),
            "agent": id(agent) in gens,
            "collectors": [id(part) in gens for part in
                           (agent.tasks, agent.loop_probe, agent.gc, agent.events,
                            agent.blocking, agent.server)],
            "app_loop": id(asyncio.get_running_loop()) in gens,
            "app_task": id(asyncio.current_task()) in gens,
            "app_queue": id(app_queue) in {id(o) for o in gc.get_objects()},
        }))

    asyncio.run(main())
    """)
    # The app's objects stay the collector's (the agent refers to its loop and task).
    assert found["app_loop"] and found["app_task"] and found["app_queue"]
    if not found["settles"]:
        assert found["runtime"] == 0 and found["agent"] is True
        return
    assert found["agent"] is False and not any(found["collectors"])
    assert found["runtime"] > 200
    # Measured on 3.11 (this host, this churn): ~1,100 added with the definitions settled
    # alone (session 8), ~540 now, ~280 of them in the run-time list. What stays: other
    # libraries' caches (typing, re), slot wrappers of the standard library's types, the
    # agent's private loop and what asyncio holds for it, the wrappers it installs into
    # asyncio, os and threading (permanent.py). The bound leaves room for other versions.
    assert found["added"] < 750, found["added"]


def test_stop_gives_the_agent_back_to_the_collector() -> None:
    found = run_python(PRELUDE + """
    async def main():
        agent = introspect.start()
        await wait_settled(agent)
        deadline = time.monotonic() + 30  # the SIGPROF sampler armed (its exit hook too)
        while not agent.sampler.active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert agent.sampler.active, agent.sampler.reason
        await churn()
        settled = _gc_accel.runtime_count()
        refs = [weakref.ref(part) for part in (agent, agent.tasks, agent.loop_probe,
                                                agent.events, agent.blocking, agent.server)]
        # A fork with the run-time list settled: the child collects, stops, releases.
        pid = os.fork()
        if pid == 0:
            class Node:
                pass
            a, b = Node(), Node()
            a.other, b.other = b, a
            gone = weakref.ref(a)
            del a, b
            gc.collect()
            introspect.stop()
            os._exit(0 if gone() is None and _gc_accel.runtime_count() == 0 else 3)
        child = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        del agent
        introspect.stop()
        # The agent's threads end on their own after stop(): until then their frames hold it.
        deadline = time.monotonic() + 30
        while any(ref() is not None for ref in refs) and time.monotonic() < deadline:
            gc.collect()
            await asyncio.sleep(0.01)
        print(json.dumps({"settles": SETTLES, "settled": settled, "child": child,
                          "after_stop": _gc_accel.runtime_count(),
                          "alive": [ref() is not None for ref in refs]}))

    asyncio.run(main())
    """)
    assert found["child"] == 0
    assert (found["settled"] > 0) is found["settles"]
    assert found["after_stop"] == 0
    assert found["alive"] == [False] * 6


def test_what_the_agent_replaces_is_not_kept_by_the_settled_list() -> None:
    found = run_python(PRELUDE + """
    from introspect.agent.events import CollectorErrors

    async def blocked_once(agent):
        total = agent.events.total
        time.sleep(0.15)  # a block: an event, replaced while it grows, pushed out later
        deadline = time.monotonic() + 30
        while agent.events.total == total and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def main():
        agent = introspect.start(recent_events=5, block_threshold=0.05)
        await wait_settled(agent)
        # An object of the agent's in a cycle, settled, then dropped: cyclic garbage in the
        # run-time list until the next pass hands it back to the collector.
        probe = CollectorErrors()
        probe.me = probe
        agent.extensions["probe"] = probe
        gone = weakref.ref(probe)
        del probe
        settle_again(agent)
        settled_probe = id(gone()) not in {id(o) for o in gc.get_objects()}
        del agent.extensions["probe"]
        settle_again(agent)
        gc.collect()
        probe_freed = gone() is None
        # Churn: tasks, queues, blocks (events pushed out of a log of 5), each followed by a
        # pass; the settled list and the whole tracked heap must not grow with the rounds.
        counts, totals = [], []
        for _ in range(12):
            await churn()
            await blocked_once(agent)
            settle_again(agent)
            gc.collect()
            counts.append(_gc_accel.runtime_count())
            totals.append(len(gc.get_objects()) + _gc_accel.runtime_count())
        print(json.dumps({"settles": SETTLES, "settled_probe": settled_probe,
                          "probe_freed": probe_freed, "counts": counts, "totals": totals,
                          "events": agent.events.total}))

    asyncio.run(main())
    """)
    assert found["events"] >= 12 and found["probe_freed"] is True
    assert found["settled_probe"] is found["settles"]
    counts, totals = found["counts"], found["totals"]
    # Bounded: the later rounds hold what the first ones did, give or take what one round's
    # churn leaves in flight (a few dozen objects), not a round's worth more each time.
    assert max(counts[4:]) - min(counts[4:]) < 100
    assert max(totals[4:]) - totals[4] < 200


def test_start_stop_start_settles_again() -> None:
    found = run_python(PRELUDE + """
    async def main():
        rounds = []
        for _ in range(2):
            agent = introspect.start()
            await wait_settled(agent)
            settled = _gc_accel.runtime_count()
            in_gens = id(agent) in {id(o) for o in gc.get_objects()}
            introspect.stop()
            rounds.append([settled, in_gens, _gc_accel.runtime_count()])
            del agent
        print(json.dumps({"settles": SETTLES, "rounds": rounds}))

    asyncio.run(main())
    """)
    for settled, in_gens, after_stop in found["rounds"]:
        assert (settled > 0) is found["settles"]
        assert in_gens is not found["settles"]
        assert after_stop == 0
