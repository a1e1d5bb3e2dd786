"""Where is it stuck: for any task, the await chain down to the innermost awaitable (future,
queue get, lock, sleep, executor job, subprocess, stream read) with how long it has waited;
and groups "N tasks of kind K are all waiting on the same lock/queue/future since T".

    from introspect.agent import stuck
    stuck.task_waiting(agent, task)      -> TaskWaiting   (one task)
    stuck.report(agent, min_tasks=2)     -> list[StuckGroup]   (groups, biggest first)

Both are safe from any thread (they read suspended coroutine frames only). How long a task has
waited: exact for `asyncio.sleep` (its timer), otherwise since the agent first saw the task
waiting on that same object — the watchdog samples waiters every few seconds while there are
at most `waits.SAMPLE_MAX_TASKS` tasks, so the age is a lower bound, accurate to that period.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from introspect.agent.collectors import frames as fr
from introspect.agent.collectors import tasks as task_mod
from introspect.protocol.messages import AwaitLink, StuckGroup

if TYPE_CHECKING:
    from introspect.agent.core import Agent
    from introspect.agent.waits import WaitTracker

# innermost stdlib coroutine → what the task is waiting for
_WAIT_KINDS = {
    "Queue.get": "queue get", "Queue.put": "queue put", "Queue.join": "queue join",
    "Lock.acquire": "lock", "Semaphore.acquire": "semaphore", "Event.wait": "event",
    "Condition.wait": "condition", "sleep": "sleep", "StreamReader._wait_for_data": "stream read",
    "StreamWriter.drain": "stream write", "Process.wait": "subprocess",
    "Process.communicate": "subprocess", "Barrier.wait": "barrier",
}


def _tracker(agent: Agent | None) -> WaitTracker | None:
    blocking = agent.blocking if agent is not None else None
    return blocking.waits if blocking is not None else None


class TaskWaiting(msgspec.Struct, kw_only=True):
    """One task: its await chain (outermost first), what it waits on, since when."""

    id: int
    name: str
    kind: str
    chain: list[AwaitLink]
    waiting: bool
    location: str
    wait_kind: str = ""
    waiting_on: str = ""
    object_id: int | None = None  # id() of the awaited queue/lock/future: the group key
    waiting_seconds: float | None = None


def _innermost_stdlib(task: asyncio.Task) -> tuple[Any, str]:
    """(the awaited object — queue, lock, event... — or None, its wait kind)."""
    chain = fr.coroutine_chain(task.get_coro())
    for link in reversed(chain):
        frame = fr.coroutine_frame(link)
        if frame is None:
            continue
        qualname = fr.qualname_of(link)
        kind = _WAIT_KINDS.get(qualname)
        if kind is not None and fr.is_stdlib(frame.f_code.co_filename):
            if kind == "sleep":
                return None, kind
            try:
                owner = frame.f_locals.get("self")  # a suspended frame: safe to read
            except Exception:
                owner = None
            return owner, kind
        if not fr.is_stdlib(frame.f_code.co_filename):
            break
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None and "_chain_future" in repr(getattr(waiter, "_callbacks", "")):
        return waiter, "executor job"
    return waiter, "future"


def _describe(obj: Any, kind: str, agent: Agent | None) -> str:
    if obj is None:
        return kind
    name = ""
    if agent is not None:
        for item, qname, *_rest in agent.queues.items():
            if item is obj:
                name = qname
                break
    label = f"{type(obj).__module__}.{type(obj).__qualname__}".replace("asyncio.locks.",
                                                                      "asyncio.")
    return f"{kind}: {name or label} 0x{id(obj):x}"


def task_waiting(agent: Agent | None, task: asyncio.Task, now: float | None = None
                 ) -> TaskWaiting:
    """One task: its await chain (outermost first), what it waits on, since when."""
    now = time.monotonic() if now is None else now
    meta = task_mod.meta_of(task)
    seq = meta.seq if meta else -id(task)
    chain = [AwaitLink(what=w, location=loc, detail=d) for w, loc, d in
             task_mod.await_chain(task)]
    waiter = getattr(task, "_fut_waiter", None)
    out = TaskWaiting(id=seq, name=str(task.get_name()), kind=meta.kind if meta else "",
                      chain=chain, waiting=waiter is not None,
                      location=task_mod.where(task)[0])
    if waiter is None:
        return out
    obj, kind = _innermost_stdlib(task)
    out.wait_kind = kind
    out.waiting_on = _describe(obj, kind, agent)
    out.object_id = id(obj) if obj is not None else None
    out.waiting_seconds = waited_seconds(agent, task, seq, waiter, kind, now)
    return out


def waiting_seconds(agent: Agent | None, task: asyncio.Task, now: float | None = None
                    ) -> float | None:
    """How long `task` has waited on its current awaitable; None when it is not waiting."""
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is None:
        return None
    meta = task_mod.meta_of(task)
    _obj, kind = _innermost_stdlib(task)
    return waited_seconds(agent, task, meta.seq if meta else -id(task), waiter, kind,
                          time.monotonic() if now is None else now)


def waited_seconds(agent: Agent | None, task: asyncio.Task, seq: int, waiter: Any,
                   wait_kind: str, now: float) -> float | None:
    """How long `task` has waited on `waiter`: exact for a sleep (its timer), otherwise since
    the watchdog first saw it waiting on that same object (None if never seen yet)."""
    since = _sleep_started(task, waiter) if wait_kind == "sleep" else None
    if since is None:
        tracker = _tracker(agent)
        since = tracker.since(seq, waiter, now) if tracker is not None else None
    return round(max(0.0, now - since), 3) if since is not None else None


def _sleep_started(task: asyncio.Task, waiter: Any) -> float | None:
    """`asyncio.sleep(delay)`: its timer fires at `when`, so it began at `when - delay`."""
    for link in reversed(fr.coroutine_chain(task.get_coro())):
        frame = fr.coroutine_frame(link)
        if frame is not None and fr.qualname_of(link) == "sleep":
            try:
                delay = float(frame.f_locals.get("delay", 0))
                handle = frame.f_locals.get("h")
                when = getattr(handle, "_when", None)
            except Exception:
                return None
            if when is None:
                return None
            loop = task.get_loop()
            return time.monotonic() - (loop.time() - (when - delay))
    return None


def report(agent: Agent, min_tasks: int = 2, limit: int = 20,
           max_tasks: int = 100_000) -> list[StuckGroup]:
    """Groups of tasks of one kind waiting on the same object, biggest first (ids of the
    first 50 tasks each). Sleeps are not grouped (each has its own timer)."""
    loop = agent.loop
    if loop is None:
        return []
    now = time.monotonic()
    groups: dict[tuple[str, int], StuckGroup] = {}
    for task in task_mod.live_tasks(loop)[:max_tasks]:
        if getattr(task, "_fut_waiter", None) is None:
            continue
        try:
            info = task_waiting(agent, task, now)
        except Exception:
            continue
        if info.object_id is None:
            continue
        group = groups.get((info.kind, info.object_id))
        if group is None:
            group = groups[(info.kind, info.object_id)] = StuckGroup(
                kind=info.kind, count=0, waiting_on=info.waiting_on, wait_kind=info.wait_kind,
                since_seconds=0.0, tasks=[], message="")
        group.count += 1
        group.since_seconds = max(group.since_seconds, info.waiting_seconds or 0.0)
        if len(group.tasks) < 50:
            group.tasks.append(info.id)
    out = [g for g in groups.values() if g.count >= min_tasks]
    out.sort(key=lambda g: (-g.count, -g.since_seconds))
    out = out[:limit]
    for g in out:
        g.message = (f"{g.count} tasks of kind {g.kind} are all waiting on {g.waiting_on} "
                     f"(the oldest for {g.since_seconds:.1f}s)")
    return out
