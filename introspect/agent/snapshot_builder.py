"""Assembles a `Snapshot` from the collectors. Runs on any thread (the agent's, usually):
every read here is one the loop thread can't be hurt by, and each collector is isolated."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from introspect.agent.asyncio_facts import running_task
from introspect.agent.collectors import tasks as task_mod
from introspect.agent.collectors.discovery_hooks import executor_rows, queue_rows
from introspect.agent.collectors.threads import thread_rows
from introspect.agent.limitations import limitations
from introspect.protocol import snapshot as s
from introspect.protocol.process_roles import own_command

if TYPE_CHECKING:
    from introspect.agent.core import Agent


def build(agent: Agent, top_tasks: int = 20) -> s.Snapshot:
    return s.Snapshot(
        time=time.time(),
        node=node(agent),
        process=agent.safe("process", lambda: s.ProcessInfo(**agent.process.stats()),
                           s.ProcessInfo(uptime_seconds=0, cpu_seconds=0, rss_bytes=0,
                                         open_fds=0, threads=0)),
        loop=agent.safe("loop", lambda: loop_info(agent), _empty_loop()),
        tasks=agent.safe("tasks", lambda: tasks_info(agent, top_tasks),
                         s.TasksInfo(total=0, by_kind=[], top=[])),
        queues=agent.safe("queues", lambda: queues(agent, names=True), []),
        threads=agent.safe("threads", lambda: threads(agent), []),
        executors=agent.safe("executors", lambda: executors(agent), []),
        gc=agent.safe("gc", lambda: s.GcInfo(**agent.gc.stats(), objects=0),
                      s.GcInfo(collections=[0, 0, 0], collected=[0, 0, 0],
                               uncollectable=[0, 0, 0], pause_seconds_total=0,
                               pause_max_seconds=0)),
        errors=agent.safe("errors", lambda: errors_info(agent), s.ErrorsInfo(total=0, recent=[])),
        events=agent.safe("events", lambda: agent.events.recent(100), []),
        agent=agent_info(agent),
    )


def node(agent: Agent) -> s.Node:
    basics = agent.node_basics()
    return s.Node(pid=agent.pid, ppid=os.getppid(), argv=own_command(),
                  hostname=basics["hostname"], python=basics["python"],
                  started_at=agent.started_at, executable=basics["executable"],
                  platform=sys.platform, agent_version=_version())


def _version() -> str:
    from introspect import __version__

    return __version__


def _empty_loop() -> s.LoopInfo:
    return s.LoopInfo(running=False, lag_seconds=0, lag_p99_seconds=0, ready=0, scheduled=0,
                      blocked_for_seconds=0)


def loop_info(agent: Agent) -> s.LoopInfo:
    probe = agent.loop_probe
    p50, p99, peak = probe.window_stats()
    loop = agent.loop
    return s.LoopInfo(
        running=probe.running,
        lag_seconds=round(max(probe.last_lag, probe.blocked_for()), 6),
        lag_p99_seconds=round(p99, 6),
        lag_p50_seconds=round(p50, 6),
        lag_max_seconds=round(peak, 6),
        ready=probe.ready(),
        scheduled=probe.scheduled(),
        blocked_for_seconds=round(probe.blocked_for(), 6),
        loop_class=f"{type(loop).__module__}.{type(loop).__qualname__}" if loop else "",
        thread=probe.thread_name,
    )


def tasks_info(agent: Agent, top: int) -> s.TasksInfo:
    live, created, finished = agent.tasks.counts()
    held = agent.blocking.held.held_by_kind() if agent.blocking is not None else {}
    by_kind = []
    for kind in created:
        by_kind.append(s.KindCount(
            kind=kind, count=max(0, live.get(kind, 0)), created=created.get(kind, 0),
            finished_ok=finished.get((kind, "ok"), 0),
            finished_error=finished.get((kind, "error"), 0),
            finished_cancelled=finished.get((kind, "cancelled"), 0),
            held_seconds=round(held.get(kind, 0.0), 4)))
    by_kind.sort(key=lambda k: (-k.count, k.kind))
    rows = top_task_rows(agent, top) if top > 0 else []
    return s.TasksInfo(total=sum(max(0, v) for v in live.values()), by_kind=by_kind, top=rows,
                       created_total=sum(created.values()), finished_total=sum(finished.values()))


def task_row(task: asyncio.Task, running: Any, now: float, with_location: bool = True,
             busy: dict[int, float] | None = None,
             held: dict[int, float] | None = None) -> s.TaskRow:
    meta = task_mod.meta_of(task)
    location, awaiting = task_mod.where(task) if with_location else ("", "")
    seq = meta.seq if meta else -id(task)
    return s.TaskRow(
        id=seq,
        name=task.get_name(),
        kind=meta.kind if meta else task_mod.TaskCollector._compute_kind(
            task.get_coro(), getattr(task.get_coro(), "cr_code", None)),
        state=task_mod.task_state(task, running),
        age_seconds=round(now - meta.created, 3) if meta else 0.0,
        location=location,
        awaiting=awaiting,
        parent=meta.parent if meta else None,
        busy_seconds=round((busy or {}).get(seq, 0.0), 4),
        held_seconds=round((held or {}).get(seq, 0.0), 4),
    )


def held_map(agent: Agent) -> dict[int, float] | None:
    """Wall seconds each live task held the loop (None when blocking detection is off)."""
    blocking = agent.blocking
    return blocking.held.task_held() if blocking is not None else None


def top_task_rows(agent: Agent, limit: int) -> list[s.TaskRow]:
    """`limit` live tasks chosen so an incident survives in a snapshot (and a recording):
    every task an event names, those that held the loop longest, those waiting longest, one
    of every kind, then the oldest; shown oldest first. Never a pass over every task: each
    source is O(its picks), the per-kind search is bounded (`KIND_SCAN`)."""
    loop = agent.loop
    if loop is None:
        return []
    picked: dict[int, asyncio.Task] = {}
    agent.safe("top tasks", lambda: _incident_tasks(agent, loop, limit, picked), None)
    if len(picked) < limit:
        for task in task_mod.oldest_tasks(loop, limit):
            picked.setdefault(_seq_of(task), task)
            if len(picked) >= limit:
                break
    chosen = sorted(picked.items())  # oldest first, as before
    running = _current_task(loop)
    now = time.monotonic()
    busy_map = agent.sampler.task_busy() if agent.sampler is not None else None
    held = held_map(agent)
    return [task_row(t, running, now, busy=busy_map, held=held) for _seq, t in chosen]


KIND_SCAN = 20_000  # newest tasks looked at for a representative of every live kind
SHARE = 4  # each incident source may fill at most 1/SHARE of the rows


def _seq_of(task: asyncio.Task) -> int:
    meta = task_mod.meta_of(task)
    return meta.seq if meta is not None else -id(task)


def _incident_tasks(agent: Agent, loop: asyncio.AbstractEventLoop, limit: int,
                    picked: dict[int, asyncio.Task]) -> None:
    registry = task_mod.registry_of(loop) or {}
    quota = max(1, limit // SHARE)

    def take(task: asyncio.Task | None) -> None:
        if task is not None and not task.done() and len(picked) < limit:
            picked.setdefault(_seq_of(task), task)

    named = 0
    for event in reversed(agent.events.recent(100)):  # newest events first
        ref = registry.get(event.task.id) if getattr(event, "task", None) else None
        if ref is not None and named < quota:
            take(ref())
            named += 1
    blocking = agent.blocking
    if blocking is not None:
        for task in blocking.held.most_held(quota):
            take(task)
        if agent.sampler is not None:
            for task in agent.sampler.most_busy(quota):
                take(task)
        for seq in blocking.waits.longest_waiting(quota):
            ref = registry.get(seq)
            take(ref() if ref is not None else None)
    live = {k for k, n in agent.tasks.counts()[0].items() if n > 0}
    have = {getattr(task_mod.meta_of(t), "kind", None) for t in
            picked.values()}
    missing = live - have
    if missing:
        for task in itertools.islice(task_mod.tasks_in_age_order(loop, newest_first=True),
                                     KIND_SCAN):
            kind = getattr(task_mod.meta_of(task), "kind", None)
            if kind in missing:
                take(task)
                missing.discard(kind)
                if not missing or len(picked) >= limit:
                    break


def _current_task(loop: asyncio.AbstractEventLoop) -> Any:
    return running_task(loop)  # readable from another thread, on every version


def queues(agent: Agent, names: bool = False) -> list[s.QueueRow]:
    """Every queue, with the task kinds that use it and — `names`, for a client's request,
    never for the agent's own periodic checks — the variable or attribute it is bound to."""
    rows = []
    found = queue_rows(agent.queues, agent.collector_errors.record)
    owners = agent.queues.owners
    bound = agent.safe("queue names", lambda: owners.names([obj for obj, _ in found]), {}) \
        if owners is not None and names else {}
    for obj, row in found:
        row["bound_to"] = bound.get(id(obj), "")  # `name` stays: it is the metrics label
        if owners is not None:
            row["consumers"], row["producers"] = owners.owners(obj)
        rows.append(s.QueueRow(**row))
    return rows


def executors(agent: Agent) -> list[s.ExecutorRow]:
    return [s.ExecutorRow(**row)
            for row in executor_rows(agent.executors, agent.collector_errors.record)]


def threads(agent: Agent) -> list[s.ThreadRow]:
    cpu = agent.process.thread_cpu()
    rows = thread_rows(cpu, agent.loop_probe.thread_id, agent.agent_thread_ids)
    return [s.ThreadRow(**r) for r in rows]


def errors_info(agent: Agent) -> s.ErrorsInfo:
    recent = [s.ErrorReport(**r) for r in agent.errors.recent(50)]
    by_type: dict[str, int] = {}
    for (_source, type_name), n in agent.errors.counts().items():
        by_type[type_name] = by_type.get(type_name, 0) + n
    return s.ErrorsInfo(total=agent.errors.total, recent=recent, by_type=by_type)


def agent_info(agent: Agent) -> s.AgentInfo:
    metrics = agent.extensions.get("metrics")
    server = agent.server
    return s.AgentInfo(
        version=_version(),
        listen=agent.listen_addresses(),
        metrics=getattr(metrics, "url", None),
        otlp="otlp" in agent.extensions,
        console=bool(agent.config.console),
        block_threshold=agent.config.block_threshold,
        collector_errors=dict(agent.collector_errors.counts),
        clients=server.client_count if server is not None else 0,
        collect_seconds=round(agent.collect_seconds_last, 6),
        limitations=_limitations(agent),
    )


def _limitations(agent: Agent) -> list[str]:
    try:
        return limitations(agent)
    except Exception as exc:  # never fail a snapshot over its footnotes
        agent.collector_errors.record("limitations", exc)
        return []
