"""A task page asked `graph=True` carries the await edges among its own tasks (what the Tree
view draws, bounded by the page instead of a dump over every live task), against a program
that knows what awaits what."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from introspect.protocol import messages as m
from tests.support.await_program import EXPECTED, await_process, expected_edges
from tests.support.procs import AgentProcess

POOL, SESSIONS = 3, 5


@pytest.fixture(scope="module")
def program() -> Iterator[AgentProcess]:
    with await_process(pool=POOL, sessions=SESSIONS) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("ready")
        yield proc


def _named_edges(page: m.TaskPage) -> set[tuple[str, str, str]]:
    names = {t.id: t.name for t in page.tasks}
    assert page.graph is not None
    return {(names[e.waiter], e.via, names[e.awaited]) for e in page.graph}


def test_a_page_of_every_task_carries_every_edge(program: AgentProcess) -> None:
    with program.client() as client:
        page = client.tasks(m.TaskListRequest(limit=1000, sort="age", descending=True,
                                              graph=True))
        plain = client.tasks(m.TaskListRequest(limit=1000))
    assert _named_edges(page) == expected_edges(POOL)
    assert plain.graph is None  # not asked: nothing computed, nothing sent


def test_a_smaller_page_carries_only_the_edges_among_its_tasks(program: AgentProcess) -> None:
    # Oldest first: the sessions, pool, fetcher, grouper, direct and main (adopted when it
    # started the agent); the tasks they start (pooled-*, fetched, grouped-*) come later.
    first = {*(f"session-{i}" for i in range(SESSIONS)), "pool", "fetcher", "grouper",
             "direct", "main"}
    with program.client() as client:
        page = client.tasks(m.TaskListRequest(limit=len(first), sort="age", descending=True,
                                              graph=True))
    assert {t.name for t in page.tasks} == first
    assert _named_edges(page) == {e for e in EXPECTED if e[0] == "main"}
