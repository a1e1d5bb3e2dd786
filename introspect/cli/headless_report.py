"""A compact periodic text report of a snapshot stream: what changed since the last one."""

from __future__ import annotations

from introspect.eventtext import event_card
from introspect.protocol.snapshot import Snapshot
from introspect.textfmt import byte_size, duration, short_path
from introspect.textsafe import escape


class Reporter:
    def __init__(self) -> None:
        self._errors_seen = 0
        self._events_seen_time = 0.0

    def report(self, snap: Snapshot, elapsed: float) -> str:
        lp, p, t = snap.loop, snap.process, snap.tasks
        lines = [
            f"[{elapsed:6.1f}s] tasks {t.total}  loop lag p99 {duration(lp.lag_p99_seconds)} "
            f"max {duration(lp.lag_max_seconds)}  ready {lp.ready}  rss "
            f"{byte_size(p.rss_bytes)}  threads {p.threads}  gc "
            f"{'/'.join(map(str, snap.gc.collections))}  errors {snap.errors.total}"
        ]
        kinds = ", ".join(f"{escape(k.kind.rsplit('.', 1)[-1], 30)}={k.count}"
                          for k in t.by_kind[:8])
        lines.append(f"          kinds: {kinds}")
        vanished = [k.kind for k in t.by_kind if k.count == 0 and k.finished_error > 0]
        if vanished:
            lines.append("          gone after crashes (0 live): "
                         + ", ".join(escape(v, 60) for v in vanished))
        if snap.queues:
            qs = ", ".join(
                f"{escape(short_path(q.name).rsplit('/', 1)[-1], 40)} {q.length}"
                + (f"/{q.capacity}" if q.capacity else "")
                + (f" ({q.putters} blocked putters)" if q.putters else "")
                for q in snap.queues[:3])
            lines.append(f"          queues: {qs}")
        for e in snap.executors:
            if e.busy or e.queue_length:
                lines.append(f"          executor {escape(e.name, 30)}: {e.busy}/{e.max_workers}"
                             f" busy, {e.queue_length} queued")
        new_errors = snap.errors.total - self._errors_seen
        if new_errors > 0:
            for r in snap.errors.recent[-min(new_errors, 5):]:
                lines.append(f"          error: {r.source} {escape(r.type, 30)}: "
                             f"{escape(r.message, 70)}")
        self._errors_seen = snap.errors.total
        for ev in sorted(snap.events, key=lambda e: e.time):
            if ev.time > self._events_seen_time:
                card = event_card(ev)
                lines.append(f"          {card.label}: {card.headline}")
        if snap.events:
            self._events_seen_time = max(e.time for e in snap.events)
        return "\n".join(lines)
