"""Bounded logs of events (blocking calls, crash loops, warnings) and of the agent's own errors."""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING

from introspect.textsafe import escape_for_log

if TYPE_CHECKING:
    from introspect.protocol.snapshot import AnyEvent

log = logging.getLogger("introspect.agent")


class EventLog:
    """Recent events, newest last; bounded by count. Safe to append from any thread. Events
    are immutable: one that changes (an ongoing block) is replaced, so a snapshot encoding
    the previous version from another thread never sees it half-changed."""

    def __init__(self, maxlen: int) -> None:
        self._events: collections.deque[AnyEvent] = collections.deque(maxlen=maxlen)
        self.total = 0
        self.by_kind: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, event: AnyEvent) -> AnyEvent:
        kind = str(type(event).__struct_config__.tag)
        with self._lock:
            self._events.append(event)
            self.total += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        return event

    def replace(self, old: AnyEvent, new: AnyEvent) -> None:
        """Put `new` where `old` is (searched from the newest); nothing if `old` has already
        been pushed out of the log."""
        with self._lock:
            events = self._events
            for i in range(len(events) - 1, -1, -1):
                if events[i] is old:
                    events[i] = new
                    return

    def recent(self, limit: int | None = None) -> list[AnyEvent]:
        with self._lock:
            items = list(self._events)
        return items if limit is None else items[-limit:]


class CollectorErrors:
    """Counts exceptions raised inside the agent's collectors, by collector name.

    A failing collector is counted (`introspect_agent_errors_total{collector}`) and logged once
    per collector, and never breaks the others or the host.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._logged: set[str] = set()

    def record(self, collector: str, exc: BaseException) -> None:
        self.counts[collector] = self.counts.get(collector, 0) + 1
        if collector not in self._logged:
            self._logged.add(collector)
            log.warning("introspect collector %s failed: %s (further errors only counted)",
                        escape_for_log(collector), escape_for_log(exc))
