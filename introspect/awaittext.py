"""The await forest as text, for `introspect dump` and the console's `pstree()`: the facts
3.14's `python -m asyncio pstree` shows (who awaits whom, through `await`, gather or a
TaskGroup), plus where each task waits, on every supported Python.

Roots are tasks nobody awaits that await someone; under each task, indented, the tasks it
awaits. Siblings with the same kind, state, place and subtree print once with their count, so
a thousand identical waiters take one line. Everything from the observed process is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from introspect.protocol import messages as m
from introspect.textfmt import short_path
from introspect.textsafe import escape

MAX_DEPTH = 40  # deeper trees end in "..." (an await chain that deep is a finding in itself)
MAX_NAMES = 6


class _Node(NamedTuple):
    via: str
    task: int


def _place(link: m.AwaitLink, shorten: bool) -> str:
    where = link.location.rsplit(" ", 1)[0]  # "file:line function": the function is `what`
    where = short_path(where) if shorten else where
    return f"{escape(link.what, 80)} ({escape(where, 160)})"


def _where(chain: m.TaskChain | None) -> str:
    """Where the task waits: its own coroutine's line, the innermost frame below it when
    there is one, and the object at the bottom."""
    if chain is None or not chain.await_chain:
        return ""
    links = chain.await_chain
    located = [link for link in links if link.location]
    parts = []
    if located:
        parts.append("at " + _place(located[0], shorten=False))
        if len(located) > 1:
            parts.append("> " + _place(located[-1], shorten=True))
    if not links[-1].location:
        parts.append(f"awaiting {escape(links[-1].what, 80)}")
    return " ".join(parts)


class Forest:
    def __init__(self, rows: Iterable[m.TaskChain], edges: Iterable[m.AwaitEdge]) -> None:
        self.rows = {chain.task.id: chain for chain in rows}
        self.awaits: dict[int, list[_Node]] = {}
        awaited: set[int] = set()
        for edge in edges:
            self.awaits.setdefault(edge.waiter, []).append(_Node(edge.via, edge.awaited))
            awaited.add(edge.awaited)
        self.roots = [w for w in self.awaits if w not in awaited]
        self._signatures: dict[int, tuple] = {}
        self.shown: set[int] = set()

    def signature(self, task: int, path: frozenset = frozenset()) -> tuple:
        """What makes two subtrees print the same."""
        if task in self._signatures:
            return self._signatures[task]
        chain = self.rows.get(task)
        head = (chain.task.kind, chain.task.state, _where(chain)) if chain else ("?", "", "")
        if task in path or len(path) >= MAX_DEPTH:
            return (*head, ())
        kids = sorted((node.via, self.signature(node.task, path | {task}))
                      for node in self.awaits.get(task, ()))
        self._signatures[task] = (*head, tuple(kids))
        return self._signatures[task]

    def _label(self, members: list[int]) -> str:
        first = self.rows.get(members[0])
        if first is None:
            return f"Task {members[0]} (not in this dump)"
        t = first.task
        if len(members) == 1:
            head = f"Task {t.id} {escape(t.name, 80)} [{escape(t.kind, 120)}] {t.state}"
        else:
            names = [escape(self.rows[i].task.name, 40) if i in self.rows else f"#{i}"
                     for i in members[:MAX_NAMES]]
            more = ", ..." if len(members) > MAX_NAMES else ""
            head = (f"{len(members)} tasks [{escape(t.kind, 120)}] {t.state}, same subtree: "
                    f"{', '.join(names)}{more}")
        where = _where(first)
        return head + (f"  {where}" if where else "")

    def _group(self, nodes: list[_Node]) -> list[tuple[str, list[int]]]:
        groups: dict[tuple, tuple[str, list[int]]] = {}
        for node in nodes:
            key = (node.via, self.signature(node.task))
            groups.setdefault(key, (node.via, []))[1].append(node.task)
        return list(groups.values())

    def lines(self) -> list[str]:
        out: list[str] = []
        for _via, members in self._group([_Node("", r) for r in self.roots]):
            out.append(self._label(members))
            self.shown.update(members)
            self._children(members, "", out, frozenset({members[0]}))
        # A task reached from no root awaits in a cycle (a deadlock): show it too.
        reached = set(self.roots)
        todo = list(self.roots)
        while todo:
            for node in self.awaits.get(todo.pop(), ()):
                if node.task not in reached:
                    reached.add(node.task)
                    todo.append(node.task)
        for task in self.awaits:
            if task not in reached and task not in self.shown:
                out.append(self._label([task]) + "  (in an await cycle)")
                self.shown.add(task)
                self._children([task], "", out, frozenset({task}))
        return out

    def _children(self, owners: list[int], indent: str, out: list[str],
                  path: frozenset) -> None:
        """What `owners` await (one task, or a folded group whose members have identical
        subtrees: their children fold together, so each level says how many in all)."""
        nodes = {node.task: node for owner in owners for node in self.awaits.get(owner, [])}
        groups = self._group(list(nodes.values()))  # a task they all await: counted once
        for i, (via, members) in enumerate(groups):
            last = i == len(groups) - 1
            branch, more = ("`- ", "   ") if last else ("|- ", "|  ")
            head = members[0]
            if head in path or len(path) >= MAX_DEPTH:
                out.append(f"{indent}{branch}{via} > Task {head} ...")
                continue
            again = " (also awaited elsewhere: shown above)" if head in self.shown else ""
            out.append(f"{indent}{branch}{via} > {self._label(members)}{again}")
            if again:
                continue
            self.shown.update(members)
            self._children(members, indent + more, out, path | {head})


def forest_lines(rows: Iterable[m.TaskChain], edges: Iterable[m.AwaitEdge]) -> list[str]:
    """The forest, one line per task or group of identical siblings; [] without edges."""
    return Forest(rows, edges).lines()
