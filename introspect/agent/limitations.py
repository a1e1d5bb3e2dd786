"""What the agent can't do for the loop it observes, in words a user reads: shown in the
snapshot (`agent.limitations`), `introspect snapshot` and the TUI's System view. Under uvloop
the events still fire (lag-based blocking detection with the stack captured the same way);
this says what is missing instead of leaving a view silently empty."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from introspect.agent import exact

if TYPE_CHECKING:
    from introspect.agent.core import Agent


def limitations(agent: Agent) -> list[str]:
    loop = agent.loop
    if loop is None:
        return ["no event loop observed yet: task, loop and blocking data start with one"]
    name = f"{type(loop).__module__}.{type(loop).__qualname__}"
    notes = []
    blocking = agent.extensions.get("blocking")
    no_selector = getattr(loop, "_selector", None) is None  # uvloop & co: nothing to wrap
    if blocking is not None and (no_selector or (getattr(blocking, "_loop", None) is loop and
                                 getattr(blocking, "_clock", None) is None)):
        notes.append(f"blocking: durations are lower bounds from the lag probe ({name} has no "
                     "Python selector to time-stamp); the culprit's stack is still captured")
    ok, why = exact.exact_available(loop)
    if not ok:
        notes.append(f"exact accounting: {why}")
    elif not exact.ACCELERATED:
        notes.append("exact accounting: the C accelerator is not built (no compiler at install "
                     "time?), the pure-Python loop costs ~0.7x of plain instead of ~0.97x")
    if not isinstance(loop, asyncio.BaseEventLoop):
        notes.append(f"lint self_waking_busy_loop: needs the run queue, which {name} does not "
                     "expose; ready-queue length and timer counts read 0")
    sampling = agent.extensions.get("sampling")
    if sampling is not None and not getattr(sampling, "active", False):
        notes.append(f"busy-time sampling: {getattr(sampling, 'reason', 'off')}")
    return notes
