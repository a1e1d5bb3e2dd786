"""Read the agent's current state as labelled values, keyed by catalog name; both exporters use it.

Only cheap reads, safe from any thread: counters the collectors keep incrementally, lengths of
queues, histogram buckets. Never `asyncio.all_tasks()`, never a census: the cost of one read does
not depend on the number of live tasks.

Label values are bounded: task kinds, queue and executor names beyond `limit` count as `other`.
A value once named stays named and keeps reporting (0 when it is gone): a dashboard or alert on
"comments workers" sees 0, never a stale or vanished series (PromEx issue #202).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from introspect.agent.collectors.discovery_hooks import executor_row, queue_row
from introspect.agent.collectors.loop import Histogram
from introspect.agent.collectors.tasks import OUTCOMES
from introspect.metrics.catalog import COLLECT_BUCKETS

OTHER = "other"
OWNER_KINDS = 3  # task kinds per queue and role in python_queue_owner_info (the first seen)
OWNER_SERIES = 200  # python_queue_owner_info series in all; owners seen later are not exported
OWNER_METRIC = "python_queue_owner_info"
Labels = tuple[str, ...]
Samples = list[tuple[Labels, float]]
HistogramSamples = list[tuple[Labels, list[tuple[float, int]], float]]


class StickyLabels:
    """At most `limit` named values, chosen by count when more compete; named ones stay."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.named: dict[Any, None] = {}  # insertion-ordered set
        self.overflowed = False

    def admit(self, counts: dict[Any, float]) -> None:
        new = [key for key in counts if key not in self.named]
        free = self.limit - len(self.named)
        if not new or free <= 0:
            return
        new.sort(key=lambda key: -counts[key])
        for key in new[:free]:
            self.named[key] = None

    def fold(self, values: dict[Any, float], other: Any = OTHER) -> dict[Any, float]:
        """Named keys (0 when absent) plus everything else summed under `other`."""
        out: dict[Any, float] = dict.fromkeys(self.named, 0)
        rest = 0.0
        for key, value in values.items():
            if key in self.named:
                out[key] += value
            else:
                rest += value
                self.overflowed = True
        if self.overflowed:
            out[other] = out.get(other, 0) + rest
        return out


@dataclass
class Reading:
    samples: dict[str, Samples] = field(default_factory=dict)
    histograms: dict[str, HistogramSamples] = field(default_factory=dict)
    taken_at: float = 0.0


def _copy(mapping: Any) -> dict:
    """dict(mapping), retried: another thread may grow it while we copy."""
    for _ in range(20):
        try:
            return dict(mapping)
        except RuntimeError:
            continue
    return {}


def _hist(histogram: Histogram) -> tuple[list[tuple[float, int]], float]:
    buckets = histogram.cumulative()
    return buckets, float(histogram.sum)


class AgentReadings:
    """One per exporter; keeps the bounded label sets and the collect-time histogram."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        limit = max(1, int(getattr(agent.config, "kinds_limit", 50)))
        self.kinds = StickyLabels(limit)
        self.queues = StickyLabels(limit)
        self.executors = StickyLabels(limit)
        self._queue_capacity: dict[tuple[str, str], float] = {}
        self._executor_max: dict[str, float] = {}
        # (queue label, role, kind) exported as owner; per (queue label, role): kinds exported
        self._owners: dict[tuple[tuple[str, str], str, str], None] = {}
        self._owner_kinds: dict[tuple[tuple[str, str], str], int] = {}
        # Families left out of every reading, Prometheus and OTLP alike (an option said so).
        self.disabled: frozenset[str] = frozenset(
            () if getattr(agent.config, "queue_owner_metric", True) else (OWNER_METRIC,))
        self.collect_seconds = Histogram(COLLECT_BUCKETS)
        self.scrapes: dict[str, int] = {}
        self._lock = threading.Lock()  # one read at a time: the label sets are shared state
        self._cached: Reading | None = None

    def read(self, max_age: float = 0.0) -> Reading:
        """The current state; a reading younger than `max_age` seconds is reused (OTLP calls
        one callback per instrument within one export)."""
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached.taken_at < max_age:
                return cached
            started = time.perf_counter()
            reading = Reading(taken_at=time.monotonic())
            for part in (self._tasks, self._loop, self._queues, self._executors, self._misc):
                try:
                    part(reading)
                except Exception as exc:  # one failing part never fails the scrape
                    self.agent.collector_errors.record(f"metrics.{part.__name__[1:]}", exc)
            self.collect_seconds.observe(time.perf_counter() - started)
            reading.histograms["introspect_agent_collect_seconds"] = [
                ((), *_hist(self.collect_seconds))]
            self._cached = reading
            return reading

    # --- parts -------------------------------------------------------------------------------
    def _tasks(self, r: Reading) -> None:
        live, created, finished = self.agent.tasks.counts()
        self.kinds.admit(created)
        r.samples["python_asyncio_tasks"] = _rows(self.kinds.fold(live))
        r.samples["python_asyncio_tasks_created_total"] = _rows(self.kinds.fold(created))
        rows: Samples = []
        for outcome in OUTCOMES:
            per_kind = {kind: n for (kind, out), n in finished.items() if out == outcome}
            rows.extend(((kind, outcome), n) for (kind,), n in _rows(self.kinds.fold(per_kind)))
        r.samples["python_asyncio_tasks_finished_total"] = rows
        sampler = self.agent.sampler
        busy = _copy(sampler.busy_by_kind()) if sampler is not None else None
        r.samples["python_asyncio_task_busy_seconds_total"] = (
            _rows(self.kinds.fold(busy)) if busy is not None else [])
        blocking = self.agent.blocking
        held = _copy(blocking.held.held_by_kind()) if blocking is not None else None
        r.samples["python_asyncio_task_held_seconds_total"] = (
            _rows(self.kinds.fold(held)) if held is not None else [])

    def _loop(self, r: Reading) -> None:
        probe = self.agent.loop_probe
        r.histograms["python_asyncio_loop_lag_seconds"] = [((), *_hist(probe.histogram))]
        r.samples["python_asyncio_loop_ready_handles"] = [((), probe.ready())]
        r.samples["python_asyncio_loop_scheduled_handles"] = [((), probe.scheduled())]
        r.samples["python_asyncio_loop_blocked_for_seconds"] = [((), probe.blocked_for())]
        blocking = self.agent.blocking
        r.samples["python_asyncio_loop_blocks_total"] = [
            ((), float(blocking.blocks_total if blocking is not None else 0))]
        r.samples["python_asyncio_loop_blocked_seconds_total"] = [
            ((), blocking.blocked_seconds_total if blocking is not None else 0.0)]
        r.histograms["python_gc_pause_seconds"] = [
            ((str(gen),), *_hist(hist)) for gen, hist in enumerate(self.agent.gc.pauses)]

    def _queues(self, r: Reading) -> None:
        length: dict[tuple[str, str], float] = {}
        putters: dict[tuple[str, str], float] = {}
        capacity: dict[tuple[str, str], float] = {}
        asyncio_queues: list[tuple[Any, tuple[str, str]]] = []
        for obj, name, site, created, watched in self.agent.queues.items():
            row = _retry(queue_row, obj, name, site, created, watched)
            if row is None:
                continue
            key = (name, row["type"])
            if isinstance(obj, asyncio.Queue):
                asyncio_queues.append((obj, key))
            length[key] = length.get(key, 0) + max(0, row["length"])
            putters[key] = putters.get(key, 0) + row["putters"]
            capacity[key] = capacity.get(key, 0) + row["capacity"]
        self.queues.admit(length or dict.fromkeys(capacity, 0))
        self._queue_capacity.update(capacity)  # a queue that is gone keeps its last capacity
        other = (OTHER, OTHER)
        r.samples["python_queue_length"] = _rows(self.queues.fold(length, other))
        r.samples["python_queue_blocked_putters"] = _rows(self.queues.fold(putters, other))
        folded = self.queues.fold(capacity, other)
        r.samples["python_queue_capacity"] = [
            (key, capacity.get(key, self._queue_capacity.get(key, 0)) if key != other
             else folded[key]) for key in folded]
        if OWNER_METRIC not in self.disabled:
            r.samples[OWNER_METRIC] = self._queue_owners(asyncio_queues)

    def _queue_owners(self, queues: list[tuple[Any, tuple[str, str]]]) -> Samples:
        """Who consumes and produces each named queue, as labels (value 1). Bounded: queues
        folded under `other` have none, at most OWNER_KINDS kinds per queue and role (the
        first seen), OWNER_SERIES in all, and kinds not named in `python_asyncio_tasks` read
        `other` (so the label joins with the task families). Sticky, as the other labels: a
        drained or vanished queue's consumer stays its consumer."""
        owners = self.agent.queues.owners
        for obj, key in queues if owners is not None else ():
            if key not in self.queues.named:
                continue
            consumers, producers = owners.owners(obj, first_seen=True)
            for role, kinds in (("consumer", consumers), ("producer", producers)):
                for kind in kinds:
                    self._add_owner(key, role, kind if kind in self.kinds.named else OTHER)
        return [((*key, role, kind), 1.0) for key, role, kind in self._owners]

    def _add_owner(self, key: tuple[str, str], role: str, kind: str) -> None:
        series = (key, role, kind)
        if series in self._owners or len(self._owners) >= OWNER_SERIES:
            return
        exported = self._owner_kinds.get((key, role), 0)
        if exported < OWNER_KINDS:
            self._owner_kinds[(key, role)] = exported + 1
            self._owners[series] = None

    def _executors(self, r: Reading) -> None:
        queued: dict[str, float] = {}
        workers: dict[str, float] = {}
        max_workers: dict[str, float] = {}
        for obj, name, site, _created, _watched in self.agent.executors.items():
            row = _retry(executor_row, obj, name, site)
            if row is None:
                continue
            queued[name] = queued.get(name, 0) + row["queue_length"]
            workers[name] = workers.get(name, 0) + row["workers"]
            max_workers[name] = max_workers.get(name, 0) + row["max_workers"]
        self.executors.admit(max_workers)
        self._executor_max.update(max_workers)
        r.samples["python_executor_queue_length"] = _rows(self.executors.fold(queued))
        r.samples["python_executor_workers"] = _rows(self.executors.fold(workers))
        folded = self.executors.fold(max_workers)
        r.samples["python_executor_max_workers"] = [
            ((name,), max_workers.get(name, self._executor_max.get(name, 0))
             if name != OTHER else value) for name, value in folded.items()]

    def _misc(self, r: Reading) -> None:
        r.samples["python_threads"] = [((), threading.active_count())]
        r.samples["python_exceptions_total"] = [
            ((source, kind), n) for (source, kind), n in self.agent.errors.counts().items()]
        r.samples["introspect_agent_errors_total"] = [
            ((name,), n) for name, n in _copy(self.agent.collector_errors.counts).items()]
        server = self.agent.server
        r.samples["introspect_agent_clients"] = [
            ((), getattr(server, "client_count", 0) if server is not None else 0)]
        audit = getattr(server, "audit", None)
        r.samples["introspect_agent_audit_total"] = [
            ((action, outcome), n)
            for (action, outcome), n in _copy(getattr(audit, "counts", {})).items()]
        lints = self.agent.blocking.lints if self.agent.blocking is not None else None
        r.samples["introspect_lint_findings_total"] = [
            ((name,), n) for name, n in _copy(lints.counts() if lints is not None else {}).items()]
        r.samples["introspect_agent_scrapes_total"] = [
            ((who,), n) for who, n in _copy(self.scrapes).items()]

    def count_scrape(self, served_by: str) -> None:
        self.scrapes[served_by] = self.scrapes.get(served_by, 0) + 1


def _rows(values: dict[Any, float]) -> Samples:
    return [((key,) if isinstance(key, str) else tuple(key), value)
            for key, value in values.items()]


def _retry(fn: Any, *args: Any) -> Any:
    """Read a row of an object another thread may be changing (deque mutated while iterated)."""
    for _ in range(3):
        try:
            return fn(*args)
        except RuntimeError:
            continue
        except Exception:
            return None
    return None
