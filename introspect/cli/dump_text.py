"""The readable form of `introspect dump`: threads, then tasks grouped by identical await
chain (a thousand handlers stuck on one lock print once, with their count). Everything that
comes from the observed process is escaped."""

from __future__ import annotations

from typing import Any

from introspect.awaittext import forest_lines
from introspect.protocol import messages as m
from introspect.textsafe import escape

MAX_NAMES_IN_GROUP = 8


def render(outcome: Any) -> str:
    """`outcome` is introspect.cli.dump_cmd.DumpOutcome."""
    if outcome.reply is not None:
        return render_agent(outcome.reply)
    from introspect.profiling import pyspy

    head = (f"pid {outcome.pid} (via py-spy: the agent did not answer: "
            f"{escape(outcome.reason, 300)})\n")
    return head + pyspy.dump_text(outcome.pyspy).rstrip("\n") + "\n"


def render_agent(reply: m.DumpReply) -> str:
    out = [f"pid {reply.pid}: {len(reply.threads)} threads, {reply.tasks_total} tasks "
           "(from the agent)"]
    if reply.loop_blocked_for_seconds > 0:
        out.append(f"the event loop has been blocked for {reply.loop_blocked_for_seconds:.1f} s")
    out.append("")
    # The loop thread first, the agent's own threads last: the reader wants the app.
    for stack in sorted(reply.threads, key=lambda s: (not s.thread.is_loop, s.thread.is_agent)):
        out.extend(_thread(stack))
    out.extend(_tasks(reply))
    out.extend(_await_forest(reply))
    return "\n".join(out) + "\n"


def _thread(stack: m.ThreadStack) -> list[str]:
    t = stack.thread
    tags = [tag for tag, on in (("event loop", t.is_loop), ("agent", t.is_agent),
                                ("daemon", t.daemon)) if on]
    head = f"Thread {escape(t.name, 80)} (ident {t.ident}, native {t.native_id}"
    head += f", cpu {t.cpu_seconds:.2f} s)" + (f" [{', '.join(tags)}]" if tags else "")
    lines = [head + " (most recent call last):"]
    for frame in stack.frames:
        lines.append(f"    {escape(frame.function, 80)} ({escape(frame.file, 200)}:{frame.line})")
    if not stack.frames:
        lines.append("    (no Python frames)")
    lines.append("")
    return lines


def _chain_key(chain: m.TaskChain) -> tuple:
    return (chain.task.kind, chain.task.state,
            tuple((link.what, link.location) for link in chain.await_chain))


def _tasks(reply: m.DumpReply) -> list[str]:
    shown = len(reply.tasks)
    more = f", {reply.tasks_total - shown} not shown" if reply.tasks_total > shown else ""
    lines = [f"Tasks: {reply.tasks_total}{more} (await chains, outermost first)"]
    groups: dict[tuple, list[m.TaskChain]] = {}
    for chain in reply.tasks:
        groups.setdefault(_chain_key(chain), []).append(chain)
    for members in sorted(groups.values(), key=lambda g: (-len(g), g[0].task.kind)):
        first = members[0].task
        if len(members) == 1:
            lines.append(f"Task {first.id} {escape(first.name, 80)!s} "
                         f"[{escape(first.kind, 120)}] {first.state}, "
                         f"age {first.age_seconds:.1f} s")
        else:
            names = ", ".join(escape(c.task.name, 40) for c in members[:MAX_NAMES_IN_GROUP])
            if len(members) > MAX_NAMES_IN_GROUP:
                names += ", ..."
            oldest = max(c.task.age_seconds for c in members)
            lines.append(f"{len(members)} tasks [{escape(first.kind, 120)}] {first.state}, "
                         f"same await chain, oldest {oldest:.1f} s: {names}")
        for link in members[0].await_chain:
            where = f" ({escape(link.location, 200)})" if link.location else ""
            detail = f" {escape(link.detail, 80)}" if link.detail else ""
            lines.append(f"    {escape(link.what, 120)}{where}{detail}")
        lines.append("")
    return lines


def _await_forest(reply: m.DumpReply) -> list[str]:
    forest = forest_lines(reply.tasks, reply.graph)
    if not forest:
        return []
    return ["Await graph: who awaits whom (via await | gather | taskgroup; roots are tasks "
            "nobody awaits)", *forest, ""]
