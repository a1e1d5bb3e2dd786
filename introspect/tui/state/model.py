"""ObserverState: the current snapshot merged from `Update`s, plus the history the charts and
trends need. Rates are computed from the snapshots' own `time`, never from the wall clock, so a
replay shows exactly what live showed."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec

from introspect.protocol import messages as m
from introspect.protocol.snapshot import QueueRow, Snapshot

HISTORY = 300  # samples kept for charts (5 minutes at 1 s updates)
MAX_QUEUE_TRENDS = 500  # queues tracked for sparklines; beyond that, oldest forgotten


@dataclass(frozen=True)
class Sample:
    time: float
    lag_p50: float
    lag_p99: float
    lag_max: float
    ready: int
    tasks: int
    rss: int
    cpu_percent: float
    gc_per_second: float
    gc_pause_seconds: float  # GC pause time spent since the previous sample
    exceptions_per_second: float
    threads: int


def queue_key(row: QueueRow) -> str:
    return row.name or row.created_at


class ObserverState:
    def __init__(self, history: int = HISTORY) -> None:
        self.sections: dict[str, Any] | None = None
        self.snapshot: Snapshot | None = None
        self.history: deque[Sample] = deque(maxlen=history)
        self.queue_trends: dict[str, deque[int]] = {}
        self.thread_cpu_percent: dict[int, float] = {}
        self.seq = -1
        self.dropped = 0
        self.updates = 0

    def reset(self) -> None:
        self.__init__(self.history.maxlen or HISTORY)  # type: ignore[misc]

    def apply(self, update: m.Update) -> Snapshot | None:
        """Merge one update; returns the new snapshot (None if it could not be applied)."""
        if update.full and update.snapshot is not None:
            sections = msgspec.to_builtins(update.snapshot)
        elif self.sections is not None and update.changed is not None:
            sections = {**self.sections, **m.changed_sections(update)}
        else:
            return None
        self.seq = update.seq
        self.dropped = update.dropped
        return self.apply_sections(sections)

    def apply_sections(self, sections: dict[str, Any]) -> Snapshot:
        snap = msgspec.convert(sections, Snapshot)
        previous = self.snapshot
        self.sections = sections
        self.snapshot = snap
        self.updates += 1
        self._observe(previous, snap)
        return snap

    def _observe(self, prev: Snapshot | None, snap: Snapshot) -> None:
        dt = snap.time - prev.time if prev is not None else 0.0
        gc_rate = exc_rate = pause = 0.0
        cpu = snap.process.cpu_percent
        if prev is not None and dt > 0:
            gc_rate = max(0, sum(snap.gc.collections) - sum(prev.gc.collections)) / dt
            exc_rate = max(0, snap.errors.total - prev.errors.total) / dt
            pause = max(0.0, snap.gc.pause_seconds_total - prev.gc.pause_seconds_total)
            if not cpu:
                cpu = max(0.0, snap.process.cpu_seconds - prev.process.cpu_seconds) / dt * 100
            prev_threads = {t.ident: t.cpu_seconds for t in prev.threads}
            self.thread_cpu_percent = {
                t.ident: max(0.0, t.cpu_seconds - prev_threads[t.ident]) / dt * 100
                for t in snap.threads if t.ident in prev_threads}
        loop = snap.loop
        self.history.append(Sample(
            time=snap.time, lag_p50=loop.lag_p50_seconds, lag_p99=loop.lag_p99_seconds,
            lag_max=max(loop.lag_max_seconds, loop.lag_seconds), ready=loop.ready,
            tasks=snap.tasks.total, rss=snap.process.rss_bytes, cpu_percent=cpu,
            gc_per_second=gc_rate, gc_pause_seconds=pause, exceptions_per_second=exc_rate,
            threads=snap.process.threads))
        for row in snap.queues:
            key = queue_key(row)
            trend = self.queue_trends.get(key)
            if trend is None:
                if len(self.queue_trends) >= MAX_QUEUE_TRENDS:
                    self.queue_trends.pop(next(iter(self.queue_trends)))
                trend = self.queue_trends[key] = deque(maxlen=60)
            trend.append(row.length)

    def latest(self) -> Sample | None:
        return self.history[-1] if self.history else None

    def queue_growing(self, row: QueueRow, window: int = 5) -> bool:
        """Grew over the last `window` samples and never shrank in between."""
        trend = list(self.queue_trends.get(queue_key(row), ()))[-window:]
        if len(trend) < 3:
            return False
        return trend[-1] > trend[0] and all(b >= a for a, b in itertools.pairwise(trend))
