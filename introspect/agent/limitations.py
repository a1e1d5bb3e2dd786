"""What the agent can't do for the loop it observes, in words a user reads: shown in the
snapshot (`agent.limitations`), `introspect snapshot` and the TUI's System view. Under uvloop
the events still fire (lag-based blocking detection with the stack captured the same way);
this says what is missing instead of leaving a view silently empty."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from introspect.agent.core import Agent


def limitations(agent: Agent) -> list[str]:
    """Each part answers for itself; this only gathers, in a stable order."""
    loop = agent.loop
    if loop is None:
        return ["no event loop observed yet: task, loop and blocking data start with one"]
    notes = []
    if agent.blocking is not None:
        notes.extend(agent.blocking.limitations(loop))
    notes.extend(agent.exact.limitations(loop))
    if not isinstance(loop, asyncio.BaseEventLoop):
        name = f"{type(loop).__module__}.{type(loop).__qualname__}"
        notes.append(f"lint self_waking_busy_loop: needs the run queue, which {name} does not "
                     "expose; ready-queue length and timer counts read 0")
    if agent.sampler is not None:
        notes.extend(agent.sampler.limitations())
    return notes
