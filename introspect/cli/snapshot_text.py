"""The readable summary of a snapshot (`introspect snapshot`, `introspect demo --headless`)."""

from __future__ import annotations

from introspect.eventtext import STUCK_SECONDS, card_text, event_card, group_errors
from introspect.protocol.snapshot import Snapshot
from introspect.textfmt import byte_size, duration, short_path
from introspect.textsafe import escape


def render(snap: Snapshot, width: int = 100, tasks: int = 10, kinds: int = 12) -> str:
    n, p, lp, t = snap.node, snap.process, snap.loop, snap.tasks
    lines = []
    argv = escape(" ".join(n.argv), 60)
    lines.append(f"pid {n.pid}  {escape(n.hostname, 40)}  python {n.python}  {argv}")
    lines.append(
        f"uptime {duration(p.uptime_seconds)}  cpu {p.cpu_seconds:.1f}s  "
        f"rss {byte_size(p.rss_bytes)}  fds {p.open_fds}  threads {p.threads}  "
        f"children {len(p.children)}")
    state = "running" if lp.running else "not running"
    stuck = f"  STUCK for {duration(lp.blocked_for_seconds)}" \
        if lp.blocked_for_seconds >= STUCK_SECONDS else ""
    lines.append(
        f"loop {state}  lag {duration(lp.lag_seconds)} (p99 {duration(lp.lag_p99_seconds)})"
        f"  ready {lp.ready}  timers {lp.scheduled}{stuck}")
    g = snap.gc
    lines.append(
        f"gc collections {'/'.join(map(str, g.collections))}  collected "
        f"{'/'.join(map(str, g.collected))}  uncollectable {sum(g.uncollectable)}  pauses "
        f"{duration(g.pause_seconds_total)} (max {duration(g.pause_max_seconds)})")
    lines.append("")
    lines.append(f"TASKS {t.total} live  ({t.created_total} created, {t.finished_total} finished)")
    for k in t.by_kind[:kinds]:
        errs = f"  errors {k.finished_error}" if k.finished_error else ""
        lines.append(f"  {k.count:>7}  {escape(k.kind, width - 30)}{errs}")
    if len(t.by_kind) > kinds:
        lines.append(f"  … {len(t.by_kind) - kinds} more kinds")
    if t.top and tasks:
        lines.append("  oldest:")
        for row in t.top[:tasks]:
            where = escape(short_path(row.location), 50)
            waiting = f" ← {escape(row.awaiting, 30)}" if row.awaiting else ""
            lines.append(f"  #{row.id:<6} {duration(row.age_seconds):>7} {row.state:<8} "
                         f"{escape(row.name, 24):<24} {where}{waiting}")
    lines.append("")
    lines.append(f"QUEUES {len(snap.queues)}")
    for q in snap.queues[:10]:
        cap = "∞" if q.capacity == 0 else str(q.capacity)
        lines.append(f"  {q.length:>7}/{cap:<6} {q.type:<8} getters {q.getters:<3} putters "
                     f"{q.putters:<3} {escape(short_path(q.name), width - 50)}")
    if snap.executors:
        lines.append("EXECUTORS")
        for e in snap.executors:
            lines.append(f"  {escape(e.name, 40):<40} workers {e.workers}/{e.max_workers} "
                         f"busy {e.busy} queued {e.queue_length}")
    lines.append(f"THREADS {len(snap.threads)}")
    for th in snap.threads[:12]:
        tag = " [loop]" if th.is_loop else (" [agent]" if th.is_agent else "")
        lines.append(f"  {escape(th.name, 28):<28}{tag:<8} cpu {th.cpu_seconds:>7.2f}s  "
                     f"{escape(short_path(th.location), width - 52)}")
    e = snap.errors
    groups = group_errors(e.recent)
    lines.append(f"ERRORS {e.total}" + (f" ({len(groups)} distinct among the last "
                                         f"{len(e.recent)})" if e.recent else ""))
    for g in groups[:8]:
        r = g.latest
        retrieved = "" if r.retrieved is None else (" retrieved" if r.retrieved else
                                                   " NEVER RETRIEVED")
        who = f" task {escape(r.task, 30)}" if r.task else (
            f" thread {escape(r.thread, 30)}" if r.thread else "")
        seen = (f"{g.count}× first {duration(max(0.0, snap.time - g.first))} ago, last "
                f"{duration(max(0.0, snap.time - g.last))} ago" if g.count > 1 else
                f"{duration(max(0.0, snap.time - g.last))} ago")
        lines.append(f"  {r.source:<8} {escape(r.type, 24)}: {escape(r.message, 60)}"
                     f"{who}{retrieved}")
        lines.append(f"           {escape(short_path(r.where), 60)}  {seen}")
    if snap.events:
        lines.append(f"EVENTS (last {min(8, len(snap.events))}, newest first)")
        for ev in sorted(snap.events, key=lambda e: -e.time)[:8]:
            lines.append(card_text(event_card(ev), snap.time, indent="  ", max_frames=8))
    if snap.agent is not None and snap.agent.limitations:
        lines.append("LIMITATIONS (what the agent can't do for this loop)")
        lines.extend(f"  {escape(note, width)}" for note in snap.agent.limitations)
    return "\n".join(lines)


