"""On-demand answers: paged task lists, task detail, stacks, dumps, cancel."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from introspect.agent import snapshot_builder as sb
from introspect.agent.collectors import tasks as task_mod
from introspect.agent.collectors.threads import thread_stacks as raw_thread_stacks
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.core import Agent

_SORT_KEYS = {
    "id": lambda r: r.id,
    "name": lambda r: r.name,
    "kind": lambda r: r.kind,
    "state": lambda r: r.state,
    "age": lambda r: r.age_seconds,
    "location": lambda r: r.location,
    "busy": lambda r: r.busy_seconds,
}


def task_page(agent: Agent, req: m.TaskListRequest) -> m.TaskPage:
    loop = agent.loop
    if loop is None:
        return m.TaskPage(total=0, matched=0, offset=req.offset, tasks=[])
    tasks = task_mod.live_tasks(loop)
    running = sb._current_task(loop)
    now = time.monotonic()
    busy_ext = agent.extensions.get("sampling")
    busy = busy_ext.task_busy() if busy_ext is not None and hasattr(busy_ext, "task_busy") \
        else None
    need_location = bool(req.location or req.text or req.sort == "location")
    rows = [sb.task_row(t, running, now, with_location=need_location, busy=busy) for t in tasks]
    total = len(rows)
    rows = [r for r in rows if _matches(r, req)]
    matched = len(rows)
    rows.sort(key=_SORT_KEYS.get(req.sort, _SORT_KEYS["age"]), reverse=req.descending)
    page = rows[req.offset: req.offset + min(req.limit, 1000)]
    if not need_location:  # fill in the expensive fields for the page only
        by_id = {_seq(t): t for t in tasks}
        for row in page:
            task = by_id.get(row.id)
            if task is not None:
                row.location, row.awaiting = task_mod.where(task)
    return m.TaskPage(total=total, matched=matched, offset=req.offset, tasks=page)


def _seq(task: asyncio.Task) -> int:
    meta = getattr(task, task_mod.META_ATTR, None)
    return meta.seq if meta else -id(task)


def _matches(row: Any, req: m.TaskListRequest) -> bool:
    if req.kind is not None and row.kind != req.kind:
        return False
    if req.state is not None and row.state != req.state:
        return False
    if req.name is not None and req.name.lower() not in row.name.lower():
        return False
    if req.location is not None and req.location.lower() not in row.location.lower():
        return False
    if req.min_age is not None and row.age_seconds < req.min_age:
        return False
    if req.text is not None:
        needle = req.text.lower()
        if not any(needle in field.lower() for field in (row.name, row.kind, row.location)):
            return False
    return True


def find_task(agent: Agent, task_id: int) -> asyncio.Task | None:
    loop = agent.loop
    if loop is None:
        return None
    for task in task_mod.live_tasks(loop):
        if _seq(task) == task_id:
            return task
    return None


def task_detail(agent: Agent, task_id: int) -> m.TaskDetail | None:
    task = find_task(agent, task_id)
    if task is None:
        return None
    loop = agent.loop
    row = sb.task_row(task, sb._current_task(loop), time.monotonic())
    chain = [m.AwaitLink(what=w, location=loc, detail=d) for w, loc, d in
             task_mod.await_chain(task)]
    stack = []
    for frame in task.get_stack(limit=64):
        stack.append(m.Frame(function=frame.f_code.co_name, file=frame.f_code.co_filename,
                             line=frame.f_lineno))
    children = [_seq(t) for t in task_mod.live_tasks(loop)
                if getattr(getattr(t, task_mod.META_ATTR, None), "parent", None) == task_id]
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    created_at = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""
    waiting_on = chain[-1].what if chain and getattr(task, "_fut_waiter", None) is not None \
        else ""
    return m.TaskDetail(task=row, await_chain=chain, stack=stack, children=children,
                        created_at=created_at, coroutine=task_mod.fr.qualname_of(coro),
                        waiting_on=waiting_on)


def thread_stacks(agent: Agent) -> list[m.ThreadStack]:
    rows = {r.ident: r for r in sb.threads(agent)}
    out = []
    for ident, frames in raw_thread_stacks().items():
        row = rows.get(ident)
        if row is None:
            continue
        out.append(m.ThreadStack(thread=row, frames=[
            m.Frame(function=f, file=file, line=line) for f, file, line in frames]))
    return out


def dump(agent: Agent, max_tasks: int) -> m.DumpReply:
    loop = agent.loop
    chains = []
    total = 0
    if loop is not None:
        tasks = task_mod.live_tasks(loop)
        total = len(tasks)
        running = sb._current_task(loop)
        now = time.monotonic()
        for task in tasks[:max_tasks]:
            chains.append(m.TaskChain(
                task=sb.task_row(task, running, now),
                await_chain=[m.AwaitLink(what=w, location=loc, detail=d)
                             for w, loc, d in task_mod.await_chain(task)]))
    return m.DumpReply(time=time.time(), pid=agent.pid, threads=thread_stacks(agent),
                       tasks=chains, tasks_total=total,
                       loop_blocked_for_seconds=agent.loop_probe.blocked_for())


def cancel_task(agent: Agent, task_id: int, message: str | None) -> tuple[bool, str]:
    task = find_task(agent, task_id)
    if task is None:
        return False, f"no live task with id {task_id}"
    loop = agent.loop
    assert loop is not None
    loop.call_soon_threadsafe(task.cancel, message)
    return True, f"cancellation requested for task {task_id} ({task.get_name()})"
