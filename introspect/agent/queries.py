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

def _sort_key(req: m.TaskListRequest, running: Any, busy: dict[int, float] | None,
              now: float) -> Any:
    """A key on the raw task, so only the page's rows are ever built."""
    meta_attr = task_mod.META_ATTR
    if req.sort == "id":
        return _seq
    if req.sort == "name":
        return lambda t: t.get_name()
    if req.sort == "kind":
        return lambda t: getattr(t, meta_attr, _NO_META).kind
    if req.sort == "state":
        return lambda t: task_mod.task_state(t, running)
    if req.sort == "busy":
        table = busy or {}
        return lambda t: table.get(_seq(t), 0.0)
    if req.sort == "location":
        return lambda t: task_mod.where(t)[0]
    return lambda t: now - getattr(t, meta_attr, _NO_META).created  # age


class _NoMeta:
    kind = "?"
    created = 0.0
    seq = 0


_NO_META = _NoMeta()


def task_page(agent: Agent, req: m.TaskListRequest) -> m.TaskPage:
    loop = agent.loop
    if loop is None:
        return m.TaskPage(total=0, matched=0, offset=req.offset, tasks=[])
    running = sb._current_task(loop)
    now = time.monotonic()
    busy_ext = agent.extensions.get("sampling")
    busy = busy_ext.task_busy() if busy_ext is not None and hasattr(busy_ext, "task_busy") \
        else None
    limit = min(req.limit, 1000)
    filtered = any(v is not None for v in (req.kind, req.name, req.state, req.location,
                                          req.min_age, req.text))
    if not filtered and req.sort == "age" and task_mod.registry_of(loop) is not None:
        # The common case (the TUI's first screen): creation order is age order: O(page).
        page_tasks = task_mod.oldest_tasks(loop, limit, skip=req.offset,
                                           newest_first=not req.descending)
        total = sum(max(0, n) for n in agent.tasks.counts()[0].values())
        rows = [sb.task_row(t, running, now, busy=busy) for t in page_tasks]
        return m.TaskPage(total=total, matched=total, offset=req.offset, tasks=rows)
    tasks = task_mod.live_tasks(loop)
    total = len(tasks)
    if filtered:
        tasks = [t for t in tasks if _task_matches(t, req, running, now)]
    tasks.sort(key=_sort_key(req, running, busy, now), reverse=req.descending)
    page = tasks[req.offset: req.offset + limit]
    rows = [sb.task_row(t, running, now, busy=busy) for t in page]
    return m.TaskPage(total=total, matched=len(tasks), offset=req.offset, tasks=rows)


def _task_matches(task: asyncio.Task, req: m.TaskListRequest, running: Any,
                  now: float) -> bool:
    """Cheap fields first; the frame walk for the location only when a filter needs it."""
    meta = getattr(task, task_mod.META_ATTR, _NO_META)
    if req.kind is not None and meta.kind != req.kind:
        return False
    if req.min_age is not None and now - meta.created < req.min_age:
        return False
    if req.state is not None and task_mod.task_state(task, running) != req.state:
        return False
    name = task.get_name()
    if req.name is not None and req.name.lower() not in name.lower():
        return False
    if req.location is None and req.text is None:
        return True
    location = task_mod.where(task)[0].lower()
    if req.location is not None and req.location.lower() not in location:
        return False
    if req.text is not None:
        needle = req.text.lower()
        return needle in name.lower() or needle in meta.kind.lower() or needle in location
    return True


def _seq(task: asyncio.Task) -> int:
    meta = getattr(task, task_mod.META_ATTR, None)
    return meta.seq if meta else -id(task)


def find_task(agent: Agent, task_id: int) -> asyncio.Task | None:
    loop = agent.loop
    if loop is None:
        return None
    registry = task_mod.registry_of(loop)
    if registry is not None and task_id > 0:
        ref = registry.get(task_id)
        task = ref() if ref is not None else None
        if task is not None and not task.done():
            return task
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
