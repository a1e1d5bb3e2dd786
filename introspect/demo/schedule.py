"""The cyclic timeline: each story contributes phases at fixed offsets into a 60-second cycle
(at speed 1); the runner logs each phase as it starts and runs its action."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from introspect.demo.runtime import StoryContext

CYCLE_SECONDS = 60.0


@dataclass(frozen=True)
class Phase:
    at: float  # seconds into the cycle, at speed 1
    story: str
    message: str  # fixed text: the README quotes it and the tests look for it
    action: Callable[[], object]


async def run_schedule(ctx: StoryContext, phases: Iterable[Phase]) -> None:
    """Run the phases cycle after cycle until cancelled. Phase times are absolute within a
    cycle, so a blocked loop delays a phase but does not shift the ones after it."""
    loop = asyncio.get_running_loop()
    ordered = sorted(phases, key=lambda phase: phase.at)
    cycle = 0
    while True:
        cycle += 1
        started = loop.time()
        ctx.say("cycle", f"cycle {cycle} starts")
        for phase in ordered:
            delay = started + ctx.clock.scaled(phase.at) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            ctx.say(phase.story, phase.message)
            phase.action()
        delay = started + ctx.clock.scaled(CYCLE_SECONDS) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
