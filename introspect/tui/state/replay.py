"""A recording as a data source (`DataSource`): a playhead over its updates with pause, step,
seek, speed. Requests the agent would answer live are answered from what the recording holds;
control actions raise `UserError` saying they need a live target."""

from __future__ import annotations

import msgspec

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot
from introspect.recording.reader import Recording
from introspect.tui.state.connection import Replaying
from introspect.tui.state.model import ObserverState
from introspect.tui.state.source import NEEDS_LIVE
from introspect.tui.state.task_query import page_locally

SPEEDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class ReplayController:
    live = False

    def __init__(self, recording: Recording, *, start: int = 0, playing: bool = True,
                 speed: float = 1.0) -> None:
        self.recording = recording
        self.index = max(0, min(start, len(recording.updates) - 1))
        self.playing = playing
        self.speed = speed
        self._clock = 0.0  # recording seconds elapsed since the current update
        self.state = self._rebuild(self.index)

    @property
    def last(self) -> int:
        return len(self.recording.updates) - 1

    def connection_state(self) -> Replaying:
        return Replaying(str(self.recording.path), self.index, self.last + 1, self.playing,
                         self.speed, self.recording.updates.times[self.index])

    def _rebuild(self, index: int) -> ObserverState:
        """The state as live had it after update `index` (and the history that came before
        the next one): replay the chart window, with the recorded history seeded where it
        arrived. A window that starts after the first update ends with a full chart of
        streamed samples, where live had pushed every seeded one out too: it seeds none.
        (Trends of queues seen fewer than their length in the window lack older points.)"""
        state = ObserverState()
        first = max(0, index - (state.history.maxlen or 0) + 1)
        if first == 0:
            self._seed(state, -1)
        for i in range(first, index + 1):
            self._observe(state, i)
            if first == 0:
                self._seed(state, i)
        return state

    def _observe(self, state: ObserverState, index: int) -> None:
        updates = self.recording.updates  # seq and dropped without decoding the update
        snapshot = msgspec.convert(self.recording.sections[index], Snapshot)
        state.observe(snapshot, updates.seqs[index], updates.dropped[index])

    def _seed(self, state: ObserverState, after: int) -> None:
        """The agent history live received after update `after`, seeded as live seeded it."""
        for samples in self.recording.history.after(after):
            state.seed_history(samples)

    def goto(self, index: int) -> bool:
        index = max(0, min(index, self.last))
        if index == self.index:
            return False
        if index == self.index + 1:
            self._observe(self.state, index)
            self._seed(self.state, index)
        else:
            self.state = self._rebuild(index)
        self.index = index
        self._clock = 0.0
        return True

    def tick(self, elapsed: float) -> bool:
        """Advance by `elapsed` wall seconds of playback; True if the playhead moved."""
        if not self.playing:
            return False
        if self.index >= self.last:
            self.playing = False
            return False
        self._clock += elapsed * self.speed
        moved = False
        while self.index < self.last:
            times = self.recording.updates.times
            gap = times[self.index + 1] - times[self.index]
            if self._clock < gap:
                break
            clock = self._clock - gap
            self.goto(self.index + 1)
            self._clock = clock
            moved = True
        return moved

    def toggle(self) -> None:
        if not self.playing and self.index >= self.last:
            self.goto(0)
        self.playing = not self.playing

    def step(self, delta: int) -> bool:
        self.playing = False
        return self.goto(self.index + delta)

    def seek_seconds(self, seconds: float) -> bool:
        """Jump by recording time (negative = back)."""
        times = self.recording.updates.times
        target = times[self.index] + seconds
        if seconds >= 0:
            index = next((i for i in range(self.index, self.last + 1)
                          if times[i] >= target), self.last)
        else:
            index = next((i for i in range(self.index, -1, -1) if times[i] <= target), 0)
        return self.goto(index)

    def change_speed(self, faster: bool) -> float:
        ordered = sorted(set(SPEEDS) | {self.speed})
        i = ordered.index(self.speed)
        self.speed = ordered[min(i + 1, len(ordered) - 1)] if faster else ordered[max(i - 1, 0)]
        return self.speed

    # --- the same questions a live agent answers (DataSource) -------------------------------
    async def tasks(self, req: m.TaskListRequest) -> m.TaskPage:
        snap = self.state.snapshot
        if snap is None:
            return m.TaskPage(total=0, matched=0, offset=0, tasks=[])
        return page_locally(list(snap.tasks.top), snap.tasks.total, req)

    async def task(self, task_id: int) -> m.TaskDetail:
        snap = self.state.snapshot
        rows = list(snap.tasks.top) if snap else []
        row = next((r for r in rows if r.id == task_id), None)
        if row is None:
            raise UserError(f"task {task_id} is not in the recording")
        children = [r.id for r in rows if r.parent == task_id]
        return m.TaskDetail(task=row, await_chain=[], stack=[], children=children)


    async def thread_stacks(self) -> list[m.ThreadStack]:
        return []

    async def cancel(self, task_id: int) -> str:
        raise UserError(NEEDS_LIVE.format(what="cancelling a task"))

    async def gc_collect(self) -> str:
        raise UserError(NEEDS_LIVE.format(what="a garbage collection"))

    async def exact_accounting(self, seconds: float) -> str:
        raise UserError(NEEDS_LIVE.format(what="exact accounting"))

    async def exact_report(self) -> m.ExactSessionReport | None:
        raise UserError(NEEDS_LIVE.format(what="the exact accounting report"))

    async def profile(self, duration: float, *, top: int = 15) -> m.ProfileReply:
        raise UserError(NEEDS_LIVE.format(what="profiling"))

    async def close(self) -> None:
        return None
