"""The recent past, kept in the agent so a client that attaches now can draw the last minutes
at once (`introspect top`'s Load charts used to start empty).

One sample per second, taken by the agent's periodic duties (blocking.py: the loop thread's
beat, the watchdog while the loop is blocked), in a ring of
`MAX_SAMPLES` (10 minutes). Each sample is a few numbers plus at most `MAX_KINDS` task kinds
and `MAX_QUEUES` queue lengths, so the ring stays under ~1.5 MB even at the caps (about 0.3 MB
for a service with a handful of kinds and queues). A sample is kept as a tuple of numbers and
(name, count) pairs, which the host's GC stops tracking, and becomes a `HistorySample` only
when a client asks: 600 structs would be walked by every full collection of the host.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from introspect.agent.collectors.discovery_hooks import queue_row
from introspect.agent.late_imports import late_import

if TYPE_CHECKING:
    from introspect.agent.core import Agent
    from introspect.protocol.messages import HistorySample

PERIOD = 1.0  # seconds between samples
MAX_SAMPLES = 600  # 10 minutes at PERIOD
MAX_KINDS = 20  # the most numerous task kinds kept per sample
MAX_QUEUES = 20  # the longest queues kept per sample
# HistorySample's fields in the order of a kept tuple; the last two are (name, count) pairs
FIELDS = ("time", "lag_p50", "lag_p99", "lag_max", "ready", "tasks", "rss_bytes",
          "cpu_seconds", "threads", "gc_collections", "gc_pause_seconds_total",
          "errors_total", "tasks_by_kind", "queue_lengths")


class History:
    """`agent.blocking.history`: `maybe_sample(agent, now)` from the duties; `samples()`."""

    def __init__(self, max_samples: int = MAX_SAMPLES) -> None:
        self._ring: deque[tuple] = deque(maxlen=max_samples)
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
        history_sample = late_import("introspect.protocol.messages").HistorySample
        ring = list(self._ring)
        kept = ring[-limit:] if limit > 0 else []
        return [history_sample(**dict(zip(FIELDS[:-2], sample[:-2], strict=True)),
                              tasks_by_kind=dict(sample[-2]), queue_lengths=dict(sample[-1]))
                for sample in kept]


def take_sample(agent: Agent) -> tuple:
    """One sample, as a tuple in `FIELDS` order."""
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
    return (time.time(), round(p50, 6), round(p99, 6),
            round(max(peak, probe.last_lag, probe.blocked_for()), 6),
            probe.ready(), sum(max(0, n) for n in live.values()),
            int(rss), float(cpu_seconds), int(threads),
            sum(gc_stats["collections"]), float(gc_stats["pause_seconds_total"]),
            agent.errors.total, tuple(kinds[:MAX_KINDS]), tuple(longest))
