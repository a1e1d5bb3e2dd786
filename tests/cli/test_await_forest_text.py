"""The await forest's text on shapes a live program rarely holds still for: identical
subtrees two levels deep, a task awaited by two tasks, an await cycle (a deadlock)."""

from __future__ import annotations

from introspect.awaittext import forest_lines
from introspect.protocol import messages as m
from introspect.protocol.snapshot import TaskRow


def chain(task_id: int, name: str, kind: str) -> m.TaskChain:
    row = TaskRow(id=task_id, name=name, kind=kind, state="waiting", age_seconds=1.0,
                  location="", awaiting="")
    return m.TaskChain(task=row, await_chain=[
        m.AwaitLink(what=kind, location=f"/srv/app.py:7 {kind}"),
        m.AwaitLink(what="Future pending")])


def edge(waiter: int, via: str, awaited: int) -> m.AwaitEdge:
    return m.AwaitEdge(waiter=waiter, via=via, awaited=awaited)


def test_identical_subtrees_fold_at_every_depth() -> None:
    # 1 awaits 100 sessions (gather); each session awaits its own fetch task.
    rows = [chain(1, "main", "main")]
    edges = []
    for i in range(100):
        rows += [chain(10 + i, f"session-{i}", "session"), chain(200 + i, f"fetch-{i}", "fetch")]
        edges += [edge(1, "gather", 10 + i), edge(10 + i, "task", 200 + i)]
    lines = forest_lines(rows, edges)
    assert len(lines) == 3, lines
    assert lines[0].startswith("Task 1 main [main] waiting  at main (/srv/app.py:7)")
    assert lines[1].startswith("`- gather > 100 tasks [session] waiting, same subtree: "
                               "session-0, session-1, ")
    assert lines[2].startswith("   `- task > 100 tasks [fetch] waiting, same subtree: "
                               "fetch-0, ")  # no false "await cycle" for the other members


def test_a_task_awaited_twice_prints_once_and_a_cycle_is_shown() -> None:
    rows = [chain(i, f"t{i}", f"k{i}") for i in range(1, 6)]
    edges = [edge(1, "task", 3), edge(2, "task", 3), edge(4, "task", 5), edge(5, "task", 4)]
    lines = forest_lines(rows, edges)
    assert lines[0].startswith("Task 1 t1") and lines[1].startswith("`- task > Task 3 t3")
    assert lines[2].startswith("Task 2 t2")
    assert lines[3].startswith("`- task > Task 3 t3") and lines[3].endswith("shown above)")
    assert lines[4].startswith("Task 4 t4") and lines[4].endswith("(in an await cycle)")
    assert lines[5] == "`- task > Task 5 t5 [k5] waiting  at k5 (/srv/app.py:7) awaiting " \
                       "Future pending"
    assert lines[6] == "   `- task > Task 4 ..."
    assert len(lines) == 7


def test_no_edges_no_forest() -> None:
    assert forest_lines([chain(1, "alone", "k")], []) == []


def test_a_task_awaited_by_every_member_of_a_group_counts_once() -> None:
    rows = [chain(i, f"w{i}", "waiter") for i in range(1, 51)] + [chain(99, "shared", "s")]
    lines = forest_lines(rows, [edge(i, "task", 99) for i in range(1, 51)])
    assert lines[0].startswith("50 tasks [waiter] waiting, same subtree: w1, w2")
    assert lines[1].startswith("`- task > Task 99 shared [s]")
    assert len(lines) == 2
