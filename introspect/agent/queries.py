"""On-demand answers: paged task lists, task detail, stacks, dumps, cancel."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from introspect.agent import await_graph as ag
from introspect.agent import snapshot_builder as sb
from introspect.agent import stuck
from introspect.agent.collectors import frames as fr
from introspect.agent.collectors import tasks as task_mod
from introspect.agent.collectors.threads import thread_stacks as raw_thread_stacks
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.core import Agent

def _sort_key(req: m.TaskListRequest, running: Any, busy: dict[int, float] | None,
              now: float, held: dict[int, float] | None = None) -> Any:
    """A key on the raw task, so only the page's rows are ever built."""
    meta_of = task_mod.meta_of
    if req.sort == "id":
        return _seq
    if req.sort == "name":
        return lambda t: t.get_name()
    if req.sort == "kind":
        return lambda t: (meta_of(t) or _NO_META).kind
    if req.sort == "state":
        return lambda t: task_mod.task_state(t, running)
    if req.sort == "busy":
        table = busy or {}
        return lambda t: table.get(_seq(t), 0.0)
    if req.sort == "held":
        held_table = held or {}
        return lambda t: held_table.get(_seq(t), 0.0)
    if req.sort == "location":
        return lambda t: fr.user_location(t.get_coro())
    return lambda t: now - (meta_of(t) or _NO_META).created  # age


COUNT_BUDGET = 0.005  # seconds spent counting matches once a filtered page is full
LOCATION_ATTR = "_introspect_location"  # (waiter future, lower-cased location) on a task


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
    busy = agent.sampler.task_busy() if agent.sampler is not None else None
    held = sb.held_map(agent)
    limit = min(req.limit, 1000)
    filtered = any(v is not None for v in (req.kind, req.name, req.state, req.location,
                                          req.min_age, req.text))
    if not filtered and req.sort == "age" and task_mod.registry_of(loop) is not None:
        # The common case (the TUI's first screen): creation order is age order: O(page).
        page_tasks = task_mod.oldest_tasks(loop, limit, skip=req.offset,
                                           newest_first=not req.descending)
        total = sum(max(0, n) for n in agent.tasks.counts()[0].values())
        rows = [sb.task_row(t, running, now, busy=busy, held=held) for t in page_tasks]
        return m.TaskPage(total=total, matched=total, offset=req.offset, tasks=rows,
                          graph=_page_graph(req, page_tasks))
    if req.sort == "age" and task_mod.registry_of(loop) is not None:
        return _filtered_by_age(agent, loop, req, running, now, limit, busy, held)
    tasks = task_mod.live_tasks(loop)
    total = len(tasks)
    if filtered:
        tasks = [t for t in tasks if _task_matches(t, req, running, now)]
    tasks.sort(key=_sort_key(req, running, busy, now, held), reverse=req.descending)
    page = tasks[req.offset: req.offset + limit]
    rows = [sb.task_row(t, running, now, busy=busy, held=held) for t in page]
    return m.TaskPage(total=total, matched=len(tasks), offset=req.offset, tasks=rows,
                      graph=_page_graph(req, page))


def _filtered_by_age(agent: Agent, loop: asyncio.AbstractEventLoop, req: m.TaskListRequest,
                     running: Any, now: float, limit: int, busy: Any,
                     held: Any = None) -> m.TaskPage:
    """A filtered page in age order without testing every task: walk the tasks in creation
    order, collect the page, then keep counting matches for at most COUNT_BUDGET seconds.
    A filter over 100k tasks answers in milliseconds when matches are common; `matched` is
    then a lower bound (`matched_exact=False`). Rare matches still mean a full scan."""
    tasks = task_mod.tasks_in_age_order(loop, newest_first=not req.descending)
    need = req.offset + limit
    page: list[asyncio.Task] = []
    matched = 0
    exact = True
    deadline = time.perf_counter() + COUNT_BUDGET
    clock = time.perf_counter
    for i, task in enumerate(tasks):
        if _task_matches(task, req, running, now):
            if matched >= req.offset and len(page) < limit:
                page.append(task)
            matched += 1
        if matched >= need and i % 256 == 255 and clock() > deadline:
            exact = False
            break
    live = agent.tasks.counts()[0]
    total = sum(max(0, n) for n in live.values())
    only_kind = req.kind is not None and all(
        v is None for v in (req.name, req.state, req.location, req.min_age, req.text))
    if not exact and only_kind:  # the live count of a kind is kept anyway: exact, O(1)
        matched, exact = max(matched, live.get(req.kind, 0)), True
    rows = [sb.task_row(t, running, now, busy=busy, held=held) for t in page]
    return m.TaskPage(total=total, matched=matched, offset=req.offset, tasks=rows,
                      matched_exact=exact, graph=_page_graph(req, page))


def _page_graph(req: m.TaskListRequest, page: list[asyncio.Task]) -> list[m.AwaitEdge] | None:
    """Asked with `graph`: the await edges among the page's tasks — bounded by the page,
    where a dump's graph walks every live task (the Tree view at 100k tasks)."""
    if not req.graph:
        return None
    shown = {id(task) for task in page}
    return [m.AwaitEdge(waiter=_seq(e.waiter), via=e.via, awaited=_seq(e.awaited))
            for e in ag.await_edges(page) if id(e.waiter) in shown]


def _location_lower(task: asyncio.Task) -> str:
    """The task's user location, lower-cased, cached on the task while it keeps waiting on the
    same future: a suspended task can't move until that future is done, and then its
    `_fut_waiter` changes (the cache holds the future itself, so no id can be reused)."""
    waiter = getattr(task, "_fut_waiter", None)
    cached = getattr(task, LOCATION_ATTR, None)
    if cached is not None and waiter is not None and cached[0] is waiter:
        return cached[1]
    location = fr.user_location(task.get_coro()).lower()
    if waiter is not None:
        try:
            setattr(task, LOCATION_ATTR, (waiter, location))
        except (AttributeError, TypeError):
            pass
    return location


def _task_matches(task: asyncio.Task, req: m.TaskListRequest, running: Any,
                  now: float) -> bool:
    """Cheap fields first; the frame walk for the location only when a filter needs it."""
    meta = task_mod.meta_of(task) or _NO_META
    if req.kind is not None and meta.kind != req.kind:
        return False
    if req.min_age is not None and now - meta.created < req.min_age:
        return False
    if req.state is not None and task_mod.task_state(task, running) != req.state:
        return False
    name = task.get_name().lower()
    if req.name is not None and req.name.lower() not in name:
        return False
    if req.location is None and req.text is None:
        return True
    if req.text is not None and req.location is None:
        needle = req.text.lower()
        if needle in name or needle in meta.kind.lower():
            return True  # no frame walk needed
        return needle in _location_lower(task)
    location = _location_lower(task)
    if req.location is not None and req.location.lower() not in location:
        return False
    if req.text is not None:
        needle = req.text.lower()
        return needle in name or needle in meta.kind.lower() or needle in location
    return True


def _seq(task: asyncio.Task) -> int:
    meta = task_mod.meta_of(task)
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
    busy = agent.sampler.task_busy() if agent.sampler is not None else None
    row = sb.task_row(task, sb._current_task(loop), time.monotonic(), busy=busy,
                      held=sb.held_map(agent))
    chain = [m.AwaitLink(what=w, location=loc, detail=d) for w, loc, d in
             task_mod.await_chain(task)]
    stack = []
    for frame in task.get_stack(limit=64):
        stack.append(m.Frame(function=frame.f_code.co_name, file=frame.f_code.co_filename,
                             line=frame.f_lineno))
    live = task_mod.live_tasks(loop)
    children = [_seq(t) for t in live
                if getattr(task_mod.meta_of(t), "parent", None) == task_id]
    # Who waits for it: its own callbacks, O(1). What it waits for: the other tasks'
    # callbacks name it, so one pass over the live tasks (as `children` above already does).
    awaited_by = [task_ref(waiter, via) for waiter, via in ag._waiters(task)]
    awaits = [task_ref(edge.awaited, edge.via) for edge in ag.await_edges(live)
              if edge.waiter is task]
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    created_at = task_mod.created_at(task_mod.meta_of(task)) or (  # else the coroutine's def
        f"{code.co_filename}:{code.co_firstlineno}" if code is not None else "")
    waiting = getattr(task, "_fut_waiter", None) is not None
    waiting_on = chain[-1].what if chain and waiting else ""
    return m.TaskDetail(task=row, await_chain=chain, stack=stack, children=children,
                        created_at=created_at, coroutine=task_mod.fr.qualname_of(coro),
                        waiting_on=waiting_on,
                        waiting_seconds=stuck.waiting_seconds(agent, task) if waiting else None,
                        awaits=awaits, awaited_by=awaited_by)


def task_ref(task: Any, via: str) -> m.TaskRef:
    """`task` as the await graph names it; `via`: how it is linked (task | gather | taskgroup)."""
    meta = task_mod.meta_of(task) or _NO_META
    try:
        name = task.get_name()
    except Exception:  # a plain future awaited through gather has no name
        name = type(task).__name__
    return m.TaskRef(id=_seq(task), name=name, kind=meta.kind, via=via)


def await_graph(tasks: list[asyncio.Task]) -> list[m.AwaitEdge]:
    """Every await edge among `tasks`, as task ids (read from the agent's thread: see
    agent/await_graph.py for why that is safe)."""
    return [m.AwaitEdge(waiter=_seq(e.waiter), via=e.via, awaited=_seq(e.awaited))
            for e in ag.await_edges(tasks)]


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
    graph: list[m.AwaitEdge] = []
    if loop is not None:
        tasks = task_mod.live_tasks(loop)
        total = len(tasks)
        graph = await_graph(tasks)
        running = sb._current_task(loop)
        now = time.monotonic()
        for task in tasks[:max_tasks]:
            chains.append(m.TaskChain(
                task=sb.task_row(task, running, now),
                await_chain=[m.AwaitLink(what=w, location=loc, detail=d)
                             for w, loc, d in task_mod.await_chain(task)]))
    return m.DumpReply(time=time.time(), pid=agent.pid, threads=thread_stacks(agent),
                       tasks=chains, tasks_total=total,
                       loop_blocked_for_seconds=agent.loop_probe.blocked_for(), graph=graph)


def cancel_task(agent: Agent, task_id: int, message: str | None) -> tuple[bool, str]:
    task = find_task(agent, task_id)
    if task is None:
        return False, f"no live task with id {task_id}"
    loop = agent.loop
    assert loop is not None
    loop.call_soon_threadsafe(task.cancel, message)
    return True, f"cancellation requested for task {task_id} ({task.get_name()})"
