"""What every story of the demo shares: a clock scaled by `--speed`, a narrator that logs story
phases on stderr, and a keeper that holds a strong reference to every task it starts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TextIO


class DemoClock:
    """Scales the demo's schedule. Only waits are scaled: blocking calls keep their real length,
    so the agent sees them at any speed."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.speed = speed

    def scaled(self, demo_seconds: float) -> float:
        """Real seconds that `demo_seconds` of the default-speed timeline take now."""
        return demo_seconds / self.speed

    async def sleep(self, demo_seconds: float, *, at_least: float = 0.0) -> None:
        """Wait `demo_seconds` of demo time, and never less than `at_least` real seconds."""
        await asyncio.sleep(max(self.scaled(demo_seconds), at_least))


class Pacer:
    """Keeps a loop at its nominal demo rate at any speed: each tick waits for the next slot, and
    small timer delays are caught up, so at high speeds (millisecond waits) the rate holds. After
    a longer stall (a blocked loop) it starts afresh rather than bursting to catch up."""

    MAX_CATCH_UP = 0.05  # real seconds

    def __init__(self, clock: DemoClock) -> None:
        self.clock = clock
        self._next: float | None = None

    async def tick(self, demo_seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        late = self._next is None or now - self._next > self.MAX_CATCH_UP
        start = now if late or self._next is None else self._next
        self._next = start + self.clock.scaled(demo_seconds)
        await asyncio.sleep(max(self._next - now, 0.0))


class Narrator:
    """One line on stderr per story phase: `demo: STORY: what happens now`."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream
        self.lines: list[str] = []  # kept even when quiet, for tests and the console

    def say(self, story: str, message: str) -> None:
        line = f"demo: {story}: {message}"
        self.lines.append(line)
        if not self.quiet:
            stream = self.stream or sys.stderr
            print(line, file=stream, flush=True)


class TaskKeeper:
    """Starts tasks and keeps them referenced until they end, so none is garbage-collected while
    pending; `cancel_all` ends them all at shutdown."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel_all(self) -> None:
        # New tasks may be spawned by tasks being cancelled: repeat until none is left.
        while self.tasks:
            pending = list(self.tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self.tasks.difference_update(pending)


@dataclass
class StoryContext:
    """Handed to every story: the shared clock, narrator and task keeper."""

    clock: DemoClock = field(default_factory=DemoClock)
    narrator: Narrator = field(default_factory=Narrator)
    keeper: TaskKeeper = field(default_factory=TaskKeeper)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return self.keeper.spawn(coro, name)

    def say(self, story: str, message: str) -> None:
        self.narrator.say(story, message)
