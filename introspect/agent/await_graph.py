"""Who awaits whom, on every supported CPython: the facts `python -m asyncio pstree` shows on
3.14 (task -> awaited task, a gather's children, a TaskGroup's tasks), read the same way on
3.11 to 3.14 from the one structure all of them keep: each future's done-callbacks.

A task T waits on a future F through a callback F holds:
- `await F` (F a task): T's own wake-up method, a builtin whose `__self__` is T;
- `gather(...)`: each child holds gather's `_done_callback`, a closure over the outer
  `_GatheringFuture`, which in turn holds the wake-up of the task awaiting the gather;
- `TaskGroup.create_task`: each task holds the group's `_on_task_done`, a bound method of the
  TaskGroup, whose `_parent_task` is the task that entered `async with` (3.14's
  `capture_call_graph` counts it as awaiting them from creation on, and so do we).
Readable from the agent's thread: `_callbacks` is copied in one C call, closures and the
group's attributes are plain reads. Unknown callbacks (the app's, `asyncio.wait`'s) are left
out rather than guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

MAX_DEPTH = 8  # gathers nested in gathers, followed this deep
VIA_TASK = "task"
VIA_GATHER = "gather"
VIA_TASKGROUP = "taskgroup"


class AwaitEdge(NamedTuple):
    waiter: asyncio.Task  # the task that waits...
    via: str  # ...through `await task`, a gather or a TaskGroup...
    awaited: asyncio.Future  # ...for this task (or future)


def _callbacks(fut: Any) -> list[Any]:
    try:
        entries = list(fut._callbacks or ())
    except Exception:  # a future class of the app's own
        return []
    # (callback, context) pairs on 3.11 to 3.14; bare callbacks on older pure-Python futures
    return [entry[0] if isinstance(entry, tuple) else entry for entry in entries]


def _gather_outer(callback: Any) -> Any:
    """The `_GatheringFuture` a gather child's done-callback reports to, or None."""
    if getattr(callback, "__name__", None) != "_done_callback" or \
            getattr(callback, "__module__", None) != "asyncio.tasks":
        return None
    for cell in getattr(callback, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, asyncio.tasks._GatheringFuture):
            return value
    return None


def _waiters(fut: Any, depth: int = 0) -> list[tuple[asyncio.Task, str]]:
    """The tasks waiting on `fut`, each with how."""
    out: list[tuple[asyncio.Task, str]] = []
    for callback in _callbacks(fut):
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            out.append((owner, VIA_TASK))
        elif isinstance(owner, asyncio.TaskGroup):
            parent = getattr(owner, "_parent_task", None)
            if isinstance(parent, asyncio.Task):
                out.append((parent, VIA_TASKGROUP))
        elif depth < MAX_DEPTH:
            outer = _gather_outer(callback)
            if outer is not None:
                out.extend((task, VIA_GATHER) for task, _ in _waiters(outer, depth + 1))
    return out


def await_edges(tasks: Iterable[asyncio.Future]) -> list[AwaitEdge]:
    """Every (waiter, via, awaited) among `tasks` (e.g. a loop's live tasks): the awaited side
    is each of `tasks`; waiters are found from it, whichever tasks they are."""
    edges = []
    for fut in tasks:
        try:
            if fut.done():
                continue
        except Exception:
            continue
        edges.extend(AwaitEdge(waiter, via, fut) for waiter, via in _waiters(fut))
    return edges


def awaited_by(edges: Iterable[AwaitEdge]) -> dict[asyncio.Future, list[AwaitEdge]]:
    out: dict[asyncio.Future, list[AwaitEdge]] = {}
    for edge in edges:
        out.setdefault(edge.awaited, []).append(edge)
    return out


def awaits(edges: Iterable[AwaitEdge]) -> dict[asyncio.Task, list[AwaitEdge]]:
    out: dict[asyncio.Task, list[AwaitEdge]] = {}
    for edge in edges:
        out.setdefault(edge.waiter, []).append(edge)
    return out


def graph_rows(edges: Iterable[AwaitEdge],
               id_of: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """Plain data for the wire: one row per waiting task,
    `{"task": id, "awaits": [{"via": ..., "task": id}, ...]}` (ids from `id_of`)."""
    rows = []
    for waiter, out in awaits(edges).items():
        rows.append({"task": id_of(waiter),
                     "awaits": [{"via": e.via, "task": id_of(e.awaited)} for e in out]})
    return rows
