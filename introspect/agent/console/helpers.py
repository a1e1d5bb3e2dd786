"""Names every console offers: `tasks()`, `task(id)`, `queues()`, `cancel(id)`, `snapshot()`,
`pstree()` and `awaits(task_or_id)` (the await graph, as `introspect dump` draws it).

They run where console code runs (the app's loop thread), so they read the loop's tasks
directly. Task ids are the agent's (the `id` of `introspect snapshot` / `top`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from introspect.agent import await_graph as ag
from introspect.agent import queries
from introspect.agent import snapshot_builder as sb
from introspect.agent.collectors import tasks as task_mod
from introspect.awaittext import forest_lines
from introspect.protocol import messages as m
from introspect.protocol.snapshot import QueueRow, TaskRow
from introspect.textsafe import escape

if TYPE_CHECKING:
    from introspect.agent.core import Agent

MAX_ROWS_SHOWN = 50
MAX_FOREST_TASKS = 10_000  # tasks pstree() labels (its edges cover every task)


class TaskTable(list):
    """A list of TaskRow that shows itself as a table (all rows stay in the list)."""

    def __repr__(self) -> str:
        if not self:
            return "(no tasks)"
        lines = [f"{'id':>7}  {'state':<10} {'age':>8}  {'name':<28} kind / location"]
        for row in self[:MAX_ROWS_SHOWN]:
            lines.append(f"{row.id:>7}  {row.state:<10} {row.age_seconds:>7.1f}s  "
                         f"{escape(row.name, 28):<28} {escape(row.kind, 80)}")
            if row.location:
                lines.append(f"{'':>7}  {'':<10} {'':>8}  {'':<28} at {escape(row.location)}"
                             + (f" awaiting {escape(row.awaiting, 60)}" if row.awaiting else ""))
        if len(self) > MAX_ROWS_SHOWN:
            lines.append(f"... {len(self) - MAX_ROWS_SHOWN} more (the list holds all "
                         f"{len(self)})")
        return "\n".join(lines)


class QueueTable(list):
    """A list of QueueRow shown as a table, largest backlog first."""

    def __repr__(self) -> str:
        if not self:
            return "(no queues)"
        lines = [f"{'length':>8} {'capacity':>8} {'getters':>7} {'putters':>7}  name (type)"]
        for row in self[:MAX_ROWS_SHOWN]:
            capacity = str(row.capacity) if row.capacity else "-"
            lines.append(f"{row.length:>8} {capacity:>8} {row.getters:>7} {row.putters:>7}  "
                         f"{escape(row.name, 80)} ({escape(row.type, 40)})")
        if len(self) > MAX_ROWS_SHOWN:
            lines.append(f"... {len(self) - MAX_ROWS_SHOWN} more")
        return "\n".join(lines)


class Forest(str):
    """The await forest as text; shows itself without quotes."""

    def __repr__(self) -> str:
        return str(self) or "(no task awaits another)"


class Awaits:
    """What one task awaits and what awaits it: `.awaits`, `.awaited_by` (lists of TaskRef:
    id, name, kind, via)."""

    def __init__(self, task: asyncio.Task, awaits: list[m.TaskRef],
                 awaited_by: list[m.TaskRef]) -> None:
        self.task = task
        self.awaits = awaits
        self.awaited_by = awaited_by

    def __repr__(self) -> str:
        lines = [f"task {escape(self.task.get_name(), 80)}"]
        for label, refs in (("awaits    ", self.awaits), ("awaited by", self.awaited_by)):
            if not refs:
                lines.append(f"  {label} no task")
            for ref in refs[:MAX_ROWS_SHOWN]:
                lines.append(f"  {label} {ref.id:>7}  {escape(ref.name, 40)} "
                             f"[{escape(ref.kind, 80)}] via {ref.via}")
            if len(refs) > MAX_ROWS_SHOWN:
                lines.append(f"  {label} ... {len(refs) - MAX_ROWS_SHOWN} more")
        return "\n".join(lines)


def make_helpers(agent: Agent) -> dict[str, Any]:
    def tasks(text: str | None = None) -> TaskTable:
        """Live tasks of the app's loop, oldest first; `text` filters on name, kind or
        location (substring, case-insensitive)."""
        loop = agent.loop
        if loop is None:
            return TaskTable()
        running = sb._current_task(loop)
        now = time.monotonic()
        rows = [sb.task_row(t, running, now) for t in task_mod.live_tasks(loop)]
        if text:
            needle = text.lower()
            rows = [r for r in rows
                    if any(needle in f.lower() for f in (r.name, r.kind, r.location))]
        rows.sort(key=lambda r: -r.age_seconds)
        return TaskTable(rows)

    def task(task_id: int) -> asyncio.Task:
        """The live asyncio.Task with this id (from `tasks()`)."""
        found = queries.find_task(agent, task_id)
        if found is None:
            raise LookupError(f"no live task with id {task_id}")
        return found

    def cancel(task_id: int, message: str | None = None) -> str:
        """Request cancellation of the task with this id."""
        found = task(task_id)
        found.cancel(message)
        return f"cancellation requested for task {task_id} ({found.get_name()})"

    def queues() -> QueueTable:
        """Every discovered or watched queue, largest backlog first."""
        return QueueTable(sb.queues(agent))

    def snapshot(top_tasks: int = 20) -> Any:
        """A full snapshot (the structure of `introspect snapshot --json`)."""
        return agent.snapshot(top_tasks=top_tasks)

    def pstree() -> Forest:
        """Who awaits whom (await, gather, TaskGroup), as a forest: roots are tasks nobody
        awaits; identical siblings print once with their count."""
        reply = queries.dump(agent, max_tasks=MAX_FOREST_TASKS)
        return Forest("\n".join(forest_lines(reply.tasks, reply.graph)))

    def awaits(task_or_id: asyncio.Task | int) -> Awaits:
        """The tasks `task_or_id` awaits and the tasks awaiting it, each with how."""
        found = task(task_or_id) if isinstance(task_or_id, int) else task_or_id
        loop = agent.loop
        live = task_mod.live_tasks(loop) if loop is not None else []
        out = [queries.task_ref(e.awaited, e.via) for e in ag.await_edges(live)
               if e.waiter is found]
        by = [queries.task_ref(waiter, via) for waiter, via in ag._waiters(found)]
        return Awaits(found, out, by)

    return {"tasks": tasks, "task": task, "cancel": cancel, "queues": queues,
            "snapshot": snapshot, "pstree": pstree, "awaits": awaits}


__all__ = ["Awaits", "Forest", "QueueRow", "QueueTable", "TaskRow", "TaskTable", "make_helpers"]
