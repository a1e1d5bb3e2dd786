"""The recent past, kept in the agent so a client that attaches now can draw the last minutes
at once (`introspect top`'s Load charts used to start empty).

One `HistorySample` per second, taken by the watchdog thread (never the loop thread), in a
ring of `MAX_SAMPLES` (10 minutes). Each sample is a few numbers plus at most `MAX_KINDS`
task kinds and `MAX_QUEUES` queue lengths, so the ring stays under ~1.5 MB even at the caps
(about 0.3 MB for a service with a handful of kinds and queues).
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from introspect.agent.collectors.discovery_hooks import queue_row
from introspect.protocol.messages import HistorySample

if TYPE_CHECKING:
    from introspect.agent.core import Agent

PERIOD = 1.0  # seconds between samples
MAX_SAMPLES = 600  # 10 minutes at PERIOD
MAX_KINDS = 20  # the most numerous task kinds kept per sample
MAX_QUEUES = 20  # the longest queues kept per sample


class History:
    """`agent.blocking.history`: `maybe_sample(agent, now)` from the watchdog; `samples()`."""

    def __init__(self, max_samples: int = MAX_SAMPLES) -> None:
        self._ring: deque[HistorySample] = deque(maxlen=max_samples)
        self._next = 0.0

    def maybe_sample(self, agent: Agent, now: float) -> None:
        if now < self._next:
            return
        self._next = now + PERIOD
        if agent.loop is None:
            return
        self._ring.append(take_sample(agent))

    def samples(self, limit: int = MAX_SAMPLES) -> list[HistorySample]:
        """Oldest first, the newest `limit`."""
        ring = list(self._ring)
        return ring[-limit:] if limit > 0 else []


def take_sample(agent: Agent) -> HistorySample:
    probe = agent.loop_probe
    p50, p99, peak = probe.window_stats()
    live = agent.tasks.counts()[0]
    kinds = sorted(((k, n) for k, n in live.items() if n > 0), key=lambda kv: -kv[1])
    queues: dict[str, int] = {}
    for obj, name, site, created, watched in agent.queues.items():
        try:
            row = queue_row(obj, name, site, created, watched)
        except Exception:
            continue
        if row is not None:
            queues[name] = queues.get(name, 0) + max(0, row["length"])
    longest = sorted(queues.items(), key=lambda kv: -kv[1])[:MAX_QUEUES]
    # not stats(): that moves the snapshot's CPU% baseline (and needs psutil)
    cpu_seconds, rss, threads = agent.process.basics()
    gc_stats = agent.gc.stats()
    return HistorySample(
        time=time.time(), lag_p50=round(p50, 6), lag_p99=round(p99, 6),
        lag_max=round(max(peak, probe.last_lag, probe.blocked_for()), 6),
        ready=probe.ready(), tasks=sum(max(0, n) for n in live.values()),
        rss_bytes=int(rss), cpu_seconds=float(cpu_seconds), threads=int(threads),
        gc_collections=sum(gc_stats["collections"]),
        gc_pause_seconds_total=float(gc_stats["pause_seconds_total"]),
        errors_total=agent.errors.total,
        tasks_by_kind=dict(kinds[:MAX_KINDS]), queue_lengths=dict(longest))
