"""Story "the VM can crash: out of memory" (seed 004): allocation churn, GC pauses, growth.

`garbage_churner` builds small graphs of session objects with reference cycles, keeps each for a
few seconds and drops it: only the cyclic collector can free them, so generation 0, 1 and 2
collections keep happening and their pauses are measurable. During the scheduled phase
`session_cache_grower` adds 256 KiB to `MemoryChurn.session_cache` four times per demo second
(~1 MiB/s, ~35 MiB at the peak); the cache is cleared later in the cycle.
"""

from __future__ import annotations

import asyncio
from collections import deque

from introspect.demo.runtime import StoryContext
from introspect.demo.schedule import Phase

STORY = "memory"
CHURN_INTERVAL = 0.05  # real seconds: churn is background load, not part of the timeline
SESSIONS_PER_BATCH = 300
BATCHES_KEPT = 60  # ~3 s of batches survive long enough to reach the old generation
CACHE_ENTRY_BYTES = 256 * 1024
CACHE_INTERVAL = 0.25
CACHE_GROWS = 15.0
CACHE_CLEARED = 50.0


class Session:
    """A call session that points at its peers and they at it: a reference cycle."""

    __slots__ = ("__weakref__", "history", "peers", "session_id")

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.peers: list[Session] = []
        self.history: dict[str, object] = {"owner": self}


def build_session_graph(size: int) -> list[Session]:
    sessions = [Session(i) for i in range(size)]
    for index, session in enumerate(sessions):
        session.peers.append(sessions[index - 1])
        session.peers.append(sessions[(index + 7) % size])
    return sessions


class MemoryChurn:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        self.session_cache: dict[str, bytes] = {}
        self.growing = False

    def start(self) -> None:
        self.ctx.spawn(garbage_churner(self), "garbage-churner")
        self.ctx.spawn(session_cache_grower(self), "session-cache-grower")

    def start_growing(self) -> None:
        self.growing = True

    def clear_cache(self) -> None:
        self.growing = False
        self.session_cache.clear()

    def cache_bytes(self) -> int:
        return sum(len(entry) for entry in self.session_cache.values())

    def phases(self) -> list[Phase]:
        return [
            Phase(
                CACHE_GROWS,
                STORY,
                "session_cache starts growing (~1 MiB per demo second)",
                self.start_growing,
            ),
            Phase(CACHE_CLEARED, STORY, "session_cache cleared", self.clear_cache),
        ]


async def garbage_churner(memory: MemoryChurn) -> None:
    kept: deque[list[Session]] = deque(maxlen=BATCHES_KEPT)
    while True:
        kept.append(build_session_graph(SESSIONS_PER_BATCH))
        await asyncio.sleep(CHURN_INTERVAL)


async def session_cache_grower(memory: MemoryChurn) -> None:
    entry = 0
    while True:
        if memory.growing:
            entry += 1
            # Filled with data (not zeros), so the pages are really resident.
            memory.session_cache[f"session-{entry}"] = b"s" * CACHE_ENTRY_BYTES
        await memory.ctx.clock.sleep(CACHE_INTERVAL)
