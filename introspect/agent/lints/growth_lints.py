"""Periodic lints over sampled state: leaks, growing queues, saturated pools, spinning tasks.

Windows are in seconds and can be tuned at runtime (tests shorten them):
    agent.blocking.lints.get("task_kind_leak").window = 10
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from typing import Any

from introspect.agent.collectors import frames as fr
from introspect.agent.collectors.discovery_hooks import executor_rows, queue_rows
from introspect.agent.collectors.tasks import meta_of
from introspect.agent.lints.base import Finding, Lint


def _monotone_growth(values: list[int]) -> int:
    """How much a series grew if it never went down; 0 otherwise."""
    if len(values) < 2 or any(b < a for a, b in itertools.pairwise(values)):
        return 0
    return values[-1] - values[0]


class _GrowthLint(Lint):
    """Samples a {subject: value} map every window/6 s; a subject whose value never went down
    over a whole window and grew by at least `min_growth` is a finding."""

    periodic = True
    window = 300.0
    min_growth = 100

    def __init__(self) -> None:
        super().__init__()
        self._samples: collections.deque[tuple[float, dict[str, int]]] = collections.deque()
        self._next_at = 0.0

    def sample(self, agent: Any) -> dict[str, int]:
        raise NotImplementedError

    def message(self, subject: str, first: int, last: int) -> str:
        raise NotImplementedError

    def check(self, agent: Any, now: float) -> list[Finding]:
        if now < self._next_at:
            return []
        self._next_at = now + self.window / 6
        self._samples.append((now, self.sample(agent)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        if now - self._samples[0][0] < self.window * 0.99:
            return []
        findings = []
        for subject, last in self._samples[-1][1].items():
            series = [values.get(subject, 0) for _t, values in self._samples]
            if _monotone_growth(series) >= self.min_growth:
                findings.append(Finding(subject=subject,
                                        message=self.message(subject, series[0], last),
                                        details={"from": series[0], "to": last,
                                                 "window": self.window}))
        return findings


class TaskKindLeak(_GrowthLint):
    name = "task_kind_leak"
    summary = "the live count of a task kind only grows (tasks created, never finishing)"

    def sample(self, agent: Any) -> dict[str, int]:
        live, _created, _finished = agent.tasks.counts()
        return {kind: n for kind, n in live.items() if n > 0}

    def message(self, subject: str, first: int, last: int) -> str:
        return (f"live tasks of kind {subject} only grew over {self.window:g}s: "
                f"{first} -> {last}")


class UnboundedQueueGrowing(_GrowthLint):
    name = "unbounded_queue_growing"
    summary = "an unbounded queue kept growing for minutes (its consumer can't keep up)"
    window = 180.0

    def sample(self, agent: Any) -> dict[str, int]:
        return {row["name"]: row["length"]
                for _obj, row in queue_rows(agent.queues, agent.collector_errors.record)
                if row["capacity"] == 0 and row["length"] >= 0}

    def message(self, subject: str, first: int, last: int) -> str:
        return f"unbounded queue {subject} grew for {self.window:g}s: {first} -> {last} items"


class ExecutorSaturated(Lint):
    """All workers busy and work queued, continuously for `sustain` seconds, queue not
    shrinking."""

    name = "executor_saturated"
    summary = "an executor had all workers busy and a growing work queue"
    periodic = True
    sustain = 30.0
    repeat_after = 300.0

    def __init__(self) -> None:
        super().__init__()
        self._since: dict[str, tuple[float, int]] = {}

    def check(self, agent: Any, now: float) -> list[Finding]:
        findings = []
        seen = set()
        for row in executor_rows(agent.executors, agent.collector_errors.record):
            name, busy, queued = row["name"], row["busy"], row["queue_length"]
            max_workers = row["max_workers"]
            seen.add(name)
            if not (max_workers > 0 and busy >= max_workers and queued > 0):
                self._since.pop(name, None)
                continue
            since, first_queue = self._since.setdefault(name, (now, queued))
            if now - since >= self.sustain and queued >= first_queue:
                findings.append(Finding(
                    subject=name,
                    message=f"executor {name}: all {max_workers} workers busy for "
                            f"{now - since:.0f}s, {queued} jobs queued",
                    details={"executor": name, "queue_length": queued,
                             "workers": row["workers"], "max_workers": max_workers}))
        for name in list(self._since):
            if name not in seen:
                del self._since[name]
        return findings


class SelfWakingBusyLoop(Lint):
    """A task found again and again in the run-queue, rescheduled by its own `sleep(0)`: it
    polls a condition instead of awaiting it, burning the loop. A cooperative CPU worker that
    yields between real slices of work is seen *running* in most samples, not queued."""

    name = "self_waking_busy_loop"
    summary = "a task spins on `await asyncio.sleep(0)` instead of awaiting an event"
    periodic = True
    interval = 0.25
    window = 3.0
    share = 0.8  # of the samples since the task was first seen spinning
    max_handles = 256  # run-queue entries inspected per sample

    def __init__(self) -> None:
        super().__init__()
        self._next_at = 0.0
        self._samples = 0
        self._hits: dict[int, list[Any]] = {}  # seq -> [hits, first sample, kind, name]

    def check(self, agent: Any, now: float) -> list[Finding]:
        loop = agent.loop
        if loop is None or now < self._next_at or agent.loop_probe.blocked_for() > 0.05:
            return []
        self._next_at = now + self.interval
        self._samples += 1
        try:
            ready = list(loop._ready)[: self.max_handles]
        except Exception:
            return []
        for handle in ready:
            task = getattr(getattr(handle, "_callback", None), "__self__", None)
            if not isinstance(task, asyncio.Task) or getattr(task, "_fut_waiter", 1) is not None:
                continue
            chain = fr.coroutine_chain(task.get_coro())
            bottom = fr.coroutine_frame(chain[-1]) if chain else None
            if bottom is None or bottom.f_code.co_name != "__sleep0":
                continue
            meta = meta_of(task)
            seq = meta.seq if meta else -id(task)
            entry = self._hits.setdefault(seq, [0, self._samples, meta.kind if meta else "?",
                                                task.get_name()])
            entry[0] += 1
        needed = max(4, int(self.window / self.interval))
        findings = []
        for seq, (hits, first, kind, name) in list(self._hits.items()):
            seen_for = self._samples - first + 1
            if hits < seen_for * self.share - 1:
                del self._hits[seq]  # not spinning (or gone)
            elif seen_for >= needed:
                findings.append(Finding(
                    subject=kind,
                    message=f"task {name} #{seq} ({kind}) keeps rescheduling itself with "
                            f"sleep(0): queued in {hits}/{seen_for} samples",
                    details={"task": {"id": seq, "name": name, "kind": kind}}))
                del self._hits[seq]
        return findings
