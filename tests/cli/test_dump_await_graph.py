"""`introspect dump` shows who awaits whom (the facts of 3.14's `python -m asyncio pstree`, on
every supported Python) for a program that knows what awaits what: the JSON carries every
edge, the text draws the forest with a thousand identical waiters on one line."""

from __future__ import annotations

import pytest

from tests.cli.support import dump_json, introspect_cli
from tests.support.await_program import await_process, expected_edges

POOL = 1000


@pytest.fixture(scope="module")
def program():
    with await_process(pool=POOL, sessions=3) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("ready")
        yield proc


def test_json_carries_every_await_edge(program):
    data = dump_json(str(program.pid))
    names = {t["task"]["id"]: t["task"]["name"] for t in data["tasks"]}
    got = {(names[e["waiter"]], e["via"], names[e["awaited"]]) for e in data["graph"]}
    assert got == expected_edges(POOL)


def test_text_draws_the_await_forest(program):
    done = introspect_cli("dump", str(program.pid))
    assert done.returncode == 0, done.stderr
    forest = done.stdout.split("Await graph: who awaits whom", 1)[1].splitlines()[1:]
    forest = forest[:forest.index("")]
    main = next(i for i, line in enumerate(forest) if " main [__main__.main]" in line)
    assert forest[main].startswith("Task ") and "at main (" in forest[main]
    below = forest[main + 1:main + 6]
    assert below[0].startswith("|- gather > Task ") and " fetcher [" in below[0]
    assert below[1].startswith("|  `- task > Task ") and " fetched [" in below[1]
    assert "at leaf (" in below[1] and "Event.wait" in below[1]
    assert below[2].startswith("|- gather > Task ") and " grouper [" in below[2]
    assert below[3].startswith("|  `- taskgroup > 2 tasks [__main__.leaf] waiting, same "
                               "subtree: grouped-1, grouped-2")
    assert below[4].startswith("`- gather > Task ") and " direct [" in below[4]
    pool = next(i for i, line in enumerate(forest) if " pool [__main__.pool]" in line)
    assert forest[pool + 1].startswith(f"`- gather > {POOL} tasks [__main__.leaf] waiting, "
                                       "same subtree: pooled-0, ")
    # sessions await nobody and nobody awaits them: not in the forest (listed under Tasks)
    assert not any("session" in line for line in forest)
    assert len(forest) == 8
