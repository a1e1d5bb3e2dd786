"""ObserverState: the current full snapshot (assembled by the client's `SnapshotAssembler`
live, or read from a recording), plus the history the charts and trends need. Rates are
computed from the snapshots' own `time`, never from the wall clock, so a replay shows exactly
what live showed."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from introspect.protocol.messages import HistorySample
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
        self.snapshot: Snapshot | None = None
        self.history: deque[Sample] = deque(maxlen=history)
        self.queue_trends: dict[str, deque[int]] = {}
        self.thread_cpu_percent: dict[int, float] = {}
        self.seq = -1
        self.dropped = 0
        self.updates = 0

    def reset(self) -> None:
        self.__init__(self.history.maxlen or HISTORY)  # type: ignore[misc]

    def observe(self, snap: Snapshot, seq: int, dropped: int) -> Snapshot:
        """Take the next full snapshot (and the stream position it came at)."""
        previous = self.snapshot
        self.snapshot = snap
        self.seq, self.dropped = seq, dropped
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

    def seed_history(self, samples: list[HistorySample]) -> list[HistorySample]:
        """Put the agent's recent past (oldest first) before what the stream brought, so the
        charts start full on attach. Only samples older than the oldest one held are taken,
        as many as there is room for; returns those (what a recording needs to seed a replay
        the same way)."""
        oldest = self.history[0].time if self.history else float("inf")
        older = [s for s in samples if s.time < oldest]
        room = (self.history.maxlen or HISTORY) - len(self.history)
        older = older[-room:] if room > 0 else []
        if not older:
            return []
        seeded: list[Sample] = []
        prev: HistorySample | None = None
        for h in older:
            dt = h.time - prev.time if prev is not None else 0.0
            cpu = gc_rate = exc_rate = pause = 0.0
            if prev is not None and dt > 0:
                cpu = max(0.0, h.cpu_seconds - prev.cpu_seconds) / dt * 100
                gc_rate = max(0, h.gc_collections - prev.gc_collections) / dt
                exc_rate = max(0, h.errors_total - prev.errors_total) / dt
                pause = max(0.0, h.gc_pause_seconds_total - prev.gc_pause_seconds_total)
            seeded.append(Sample(
                time=h.time, lag_p50=h.lag_p50, lag_p99=h.lag_p99, lag_max=h.lag_max,
                ready=h.ready, tasks=h.tasks, rss=h.rss_bytes, cpu_percent=cpu,
                gc_per_second=gc_rate, gc_pause_seconds=pause, exceptions_per_second=exc_rate,
                threads=h.threads))
            prev = h
        self.history.extendleft(reversed(seeded))
        keys = dict.fromkeys(k for h in older for k in h.queue_lengths)
        for key in keys:
            trend = self.queue_trends.get(key, deque(maxlen=60))
            if key not in self.queue_trends and len(self.queue_trends) >= MAX_QUEUE_TRENDS:
                continue
            past = [h.queue_lengths[key] for h in older if key in h.queue_lengths]
            self.queue_trends[key] = deque(past + list(trend), maxlen=trend.maxlen)
        return older

    def latest(self) -> Sample | None:
        return self.history[-1] if self.history else None

    def queue_growing(self, row: QueueRow, window: int = 5) -> bool:
        """Grew over the last `window` samples and never shrank in between."""
        trend = list(self.queue_trends.get(queue_key(row), ()))[-window:]
        if len(trend) < 3:
            return False
        return trend[-1] > trend[0] and all(b >= a for a, b in itertools.pairwise(trend))
