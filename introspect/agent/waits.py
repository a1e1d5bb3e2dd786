"""First-seen times of waiting tasks, sampled by the periodic duties (blocking.py), so
`introspect.agent.stuck` can say how long a task has waited on the same object (a lower
bound, accurate to `SAMPLE_PERIOD`). Apart from stuck.py: the agent keeps one from the start,
and stuck.py (with the protocol structs it builds) is imported at the first client request
only."""

from __future__ import annotations

import heapq
import threading
from typing import TYPE_CHECKING, Any

from introspect.agent.collectors import tasks as task_mod

if TYPE_CHECKING:
    from introspect.agent.core import Agent

SAMPLE_MAX_TASKS = 10_000
SAMPLE_PERIOD = 2.0


class WaitTracker:
    """(task seq, id(awaited future)) → first time seen; bounded by the live tasks."""

    def __init__(self) -> None:
        self._first_seen: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()
        self._next_sample = 0.0

    def since(self, seq: int, waiter: Any, now: float) -> float:
        key = (seq, id(waiter))
        with self._lock:
            return self._first_seen.setdefault(key, now)

    def longest_waiting(self, count: int) -> list[int]:
        """Task seqs of the `count` waits first seen earliest (longest waiting first)."""
        with self._lock:
            items = heapq.nsmallest(count * 4, self._first_seen.items(), key=lambda kv: kv[1])
        out: list[int] = []
        for (seq, _waiter), _since in items:
            if seq not in out:
                out.append(seq)
                if len(out) >= count:
                    break
        return out

    def maybe_sample(self, agent: Agent, now: float) -> None:
        """The periodic duties (blocking.py): note every waiting task's waiter (cheap, bounded)."""
        if now < self._next_sample or agent.loop is None:
            return
        self._next_sample = now + SAMPLE_PERIOD
        if sum(max(0, n) for n in agent.tasks.counts()[0].values()) > SAMPLE_MAX_TASKS:
            return
        fresh: dict[tuple[int, int], float] = {}
        with self._lock:
            old = self._first_seen
            for task in task_mod.live_tasks(agent.loop):
                waiter = getattr(task, "_fut_waiter", None)
                meta = task_mod.meta_of(task)
                if waiter is None or meta is None:
                    continue
                key = (meta.seq, id(waiter))
                fresh[key] = old.get(key, now)
            self._first_seen = fresh
