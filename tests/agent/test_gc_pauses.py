"""GC pauses per generation, timed by the agent's `gc.callbacks` entry (C where built, Python
otherwise), against a program that knows which collections it ran: the automatic collector is
off, and it runs 7 full and 3 young collections itself."""

from __future__ import annotations

import pytest

from tests.agent.test_start_imports import run_python

PROGRAM = """
    import asyncio, gc, json, sys
    if {python!r}:
        sys.modules["introspect.agent._gc_accel"] = None  # the pure-Python timer
    import introspect

    async def main():
        gc.disable()  # before start(): its threads allocate as it starts
        agent = introspect.start()
        for _ in range(7):
            gc.collect(2)
        for _ in range(3):
            gc.collect(0)
        pauses = agent.gc.pauses
        stats = agent.gc.stats()
        print(json.dumps({{
            "c": agent.gc._timer is not None,
            "count": [h.count for h in pauses],
            "bucketed": [sum(h.counts) for h in pauses],
            "cumulative_top": [h.cumulative()[-1][1] for h in pauses],
            "sums": [h.sum for h in pauses],
            "total": stats["pause_seconds_total"], "max": stats["pause_max_seconds"],
        }}))

    asyncio.run(main())
"""


@pytest.mark.parametrize("timer", ["c", "python"])
def test_every_collection_is_timed_in_its_generation(timer: str) -> None:
    got = run_python(PROGRAM.format(python=timer == "python"))
    assert got["c"] is (timer == "c")
    assert got["count"] == [3, 0, 7]
    assert got["bucketed"] == got["count"] == got["cumulative_top"]
    assert got["sums"][0] > 0 and got["sums"][1] == 0 and got["sums"][2] > 0
    assert got["total"] == pytest.approx(sum(got["sums"]))
    assert 0 < got["max"] <= got["sums"][2]  # the longest pause is a full one here
