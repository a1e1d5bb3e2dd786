"""A recording replays to the same screens live showed: the live app records its own stream
(`--record`), including the agent's history it seeded its charts with, the target exits (so
live holds its last state), then the replay at the last update must draw every
snapshot-driven view identically, and hold the same chart data as live at every frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot
from introspect.recording import read_recording
from introspect.textfmt import clock_time
from introspect.tui import app as app_module
from introspect.tui.app import IntrospectApp
from introspect.tui.state.connection import TargetExited
from introspect.tui.state.model import ObserverState
from introspect.tui.state.replay import ReplayController
from tests.support.procs import wait_until
from tests.tui.support import fixture_process, poll, run, screen_text

VIEWS = ["1", "2", "5", "7", "8", "9"]  # tasks/tree/threads also ask the live agent for more


def body(text: str) -> list[str]:
    """The screen below the header and banner (those say live vs replay, on purpose)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "1 System" in line)
    shown = [line.rstrip() for line in lines[start:-1]]  # no footer: replay adds its keys
    while shown and not shown[-1]:
        shown.pop()  # the live banner takes two lines: compare content, not padding
    return shown


def charts(model: ObserverState) -> tuple[list[Any], dict[str, list[int]]]:
    """What the charts and trends draw from."""
    return list(model.history), {k: list(v) for k, v in model.queue_trends.items()}


class ChartsKeepingApp(IntrospectApp):
    """Live `top`, keeping its chart data at each frame: after update i and any history that
    arrived before update i + 1 (what the screen held until the next update)."""

    CSS_PATH = Path(app_module.__file__).parent / IntrospectApp.CSS_PATH

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frames: dict[int, tuple[list[Any], dict[str, list[int]]]] = {}

    def on_snapshot(self, snapshot: Snapshot, update: m.Update) -> None:
        super().on_snapshot(snapshot, update)
        self.frames[self.model.updates - 1] = charts(self.model)

    def on_history(self, samples: list[m.HistorySample]) -> None:
        super().on_history(samples)
        if self.model.updates:
            self.frames[self.model.updates - 1] = charts(self.model)


def test_replay_draws_what_live_drew(tmp_path: Path) -> None:
    path = tmp_path / "session.rec"
    live_screens: dict[str, list[str]] = {}
    live_frames: dict[int, tuple[list[Any], dict[str, list[int]]]] = {}
    with fixture_process(seconds=4) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:  # a past from before the attach, for live to seed
            wait_until(lambda: len(client.history()) >= 2, timeout=30, interval=0.2,
                       message="2 s of agent history")

        async def live() -> None:
            app = ChartsKeepingApp(target=str(proc.pid), interval=0.3, record_to=path)
            # Two lines taller: live shows a two-line "target exited" banner above the tabs.
            async with app.run_test(size=(100, 32)) as pilot:
                await poll(pilot, lambda: isinstance(app.connection, TargetExited),
                           "the target's exit", timeout=30)
                assert len(body(screen_text(app))) and "has exited" in screen_text(app)
                assert app.model.updates >= 4
                for key in VIEWS:
                    await pilot.press(key)
                    await pilot.pause()
                    live_screens[key] = body(screen_text(app))
                live_frames.update(app.frames)

        run(live())

    recording = read_recording(path)
    assert recording.end is not None and recording.end.reason == "target-exited"
    last = len(recording.updates) - 1
    assert sorted(live_frames) == list(range(last + 1))
    # Live drew the agent's past from before the attach, and the recording kept it.
    first_update = recording.updates.times[0]
    assert any(s.time < first_update for s in live_frames[last][0])
    assert len(recording.history) >= 1

    # Every frame, opened directly (a rebuild), stepped forward, and stepped back.
    for index in range(last + 1):
        opened = ReplayController(recording, start=index, playing=False)
        assert charts(opened.state) == live_frames[index], f"frame {index} opened"
    stepping = ReplayController(recording, playing=False)
    for index in [*range(1, last + 1), *range(last - 1, -1, -1)]:
        stepping.step(index - stepping.index)
        assert charts(stepping.state) == live_frames[index], f"frame {index} stepped"

    async def replay() -> None:
        app = IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                            replay_playing=False)
        async with app.run_test(size=(100, 30)) as pilot:
            for key in VIEWS:
                await pilot.press(key)
                await pilot.pause()
                assert body(screen_text(app)) == live_screens[key], f"view {key} differs"

    run(replay())


def test_replay_controls_step_seek_speed() -> None:
    from tests.tui.support import RECORDING

    recording = read_recording(RECORDING)
    last = len(recording.updates) - 1

    async def scenario() -> None:
        app = IntrospectApp(recording=recording, replay_playing=False)
        async with app.run_test(size=(100, 30)) as pilot:
            assert app.replay is not None
            await poll(pilot, lambda: f"replay 1/{last + 1}" in screen_text(app), "start")
            # each frame's own wall-clock time in the header, not the time of replaying it
            first = clock_time(recording.updates[0].time)
            second = clock_time(recording.updates[1].time)
            assert first != second
            await poll(pilot, lambda: f"replay 1/{last + 1} at {first}" in screen_text(app),
                       "first frame's time")
            await pilot.press("full_stop")
            await poll(pilot, lambda: f"replay 2/{last + 1} at {second}" in screen_text(app),
                       "step")
            await pilot.press("comma")
            await poll(pilot, lambda: app.replay.index == 0, "step back")
            await pilot.press("greater_than_sign")  # +10 s: past the end of a 3 s recording
            await poll(pilot, lambda: app.replay.index == last, "seek to the end")
            await pilot.press("less_than_sign")
            await poll(pilot, lambda: app.replay.index == 0, "seek back")
            await pilot.press("plus", "plus")
            await poll(pilot, lambda: "×5" in screen_text(app), "speed ×5")
            await pilot.press("space")  # play: reaches the end by itself, then stops
            await poll(pilot, lambda: app.replay.index == last and not app.replay.playing,
                       "played to the end")
            assert app.model.snapshot is not None
            assert app.model.snapshot.time == recording.updates[last].time

    run(scenario())
