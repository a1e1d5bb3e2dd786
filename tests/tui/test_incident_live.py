"""Issue 16 against live targets: events read as incident cards, identical errors are one
row, crash-looped kinds come first in Tasks, STUCK in the header, HELD next to BUSY, the
screenshot key, every key in the help."""

from __future__ import annotations

from pathlib import Path

from introspect.eventtext import group_errors
from introspect.protocol.snapshot import BlockingEvent
from introspect.tui.app import IntrospectApp
from introspect.tui.views.errors import ErrorsView
from introspect.tui.views.tasks import TasksView
from tests.support.procs import AgentProcess
from tests.tui.support import poll, poll_text, run, screen_text

BLOCKS_THE_LOOP = """
    import asyncio, time

    async def main():
        print("ready", flush=True)
        while True:
            await asyncio.sleep(0.1)
            time.sleep(2.0)  # the loop's thread waits: STUCK while it does

    asyncio.run(main())
"""


def test_errors_are_grouped_and_a_blocking_event_reads_as_a_card(demo: AgentProcess) -> None:
    async def scenario() -> None:
        app = IntrospectApp(target=str(demo.pid), interval=0.3, initial_view="errors")
        async with app.run_test(size=(160, 48)) as pilot:
            view = app.query_one(ErrorsView)
            await poll(pilot, lambda: any(isinstance(e, BlockingEvent) for e in view.events)
                       and any(g.count > 1 for g in view.groups),
                       "a blocking event and an error seen twice", timeout=60)
            # one row per (type, message, place), counts adding up to the errors reported
            # (polled: the model may be one update ahead of the screen)
            def matches_model() -> bool:
                snap = app.model.snapshot
                truth = group_errors(snap.errors.recent) if snap is not None else []
                return [(g.count, g.latest.type, g.latest.where) for g in view.groups] == \
                    [(g.count, g.latest.type, g.latest.where) for g in truth]

            await poll(pilot, matches_model, "the rows equal the snapshot's errors grouped")
            await pilot.press("p")  # freeze the display: the rows stay where they are
            repeated = next(g for g in view.groups if g.count > 1)
            assert f"{repeated.count}×" in screen_text(app)

            index = next(i for i, e in enumerate(view.events) if isinstance(e, BlockingEvent))
            event = view.events[index]
            assert isinstance(event, BlockingEvent)
            table = view.query_one("#event-table")
            table.focus()
            table.move_cursor(row=index)  # type: ignore[attr-defined]
            await pilot.press("enter")
            text = await poll_text(pilot, "stack, innermost last")
            assert "loop blocked" in text and "blocking_calls.py" in text
            assert "{'" not in text and "[{" not in text and "Frame(" not in text
            # innermost last: the app's function, then the call it was in
            lines = [line.strip(" █▌▐") for line in text.splitlines()]
            stack = lines[lines.index(next(x for x in lines if x.startswith("stack"))) + 1:]
            frames = [x for x in stack if x and "▄" not in x and not x.startswith("Esc")]
            assert frames[-1].startswith("→ time.sleep")
            assert frames[-2].startswith("sync_db_query")

    run(scenario())


def test_a_kind_gone_after_crashes_is_flagged_above_the_tasks(demo: AgentProcess) -> None:
    async def scenario() -> None:
        app = IntrospectApp(target=str(demo.pid), interval=0.3, initial_view="tasks")
        async with app.run_test(size=(160, 40)) as pilot:
            text = await poll_text(pilot, "gone after", timeout=40)
            snap = app.model.snapshot
            assert snap is not None
            gone = [k for k in snap.tasks.by_kind if k.count == 0 and k.finished_error]
            assert gone
            top = text.splitlines()[4]  # right under the tabs, above the table
            assert "gone after" in top
            assert any(k.kind.rsplit(".", 1)[-1] in top for k in gone)
            header = text.splitlines()[6]
            assert "HELD" in header and "BUSY" in header
            assert header.index("HELD") < header.index("BUSY")

    run(scenario())


def test_stuck_in_the_header_while_the_loop_is_blocked(tmp_path: Path) -> None:
    with AgentProcess.script(BLOCKS_THE_LOOP) as proc:
        proc.wait_for_line("ready")
        socket = proc.wait_for_agent()  # the app's process is a child of `introspect run`

        async def scenario() -> None:
            app = IntrospectApp(target=str(socket), interval=0.3)
            app.screenshot_dir = tmp_path
            async with app.run_test(size=(80, 24)) as pilot:
                text = await poll_text(pilot, "STUCK", timeout=30)
                figures = text.splitlines()[1]
                assert figures.lstrip().startswith("STUCK")
                assert "  lag " in figures and "  rq " in figures  # nothing runs together

                await pilot.press("S")
                await poll(pilot, lambda: list(tmp_path.glob("*.svg")), "the screenshot")
                saved = next(tmp_path.glob("*.svg"))
                assert saved.read_text().lstrip().startswith("<svg")
                notes = [str(n.message) for n in app._notifications]
                assert any(str(saved) in n for n in notes), notes

                await pilot.press("question_mark")
                await poll_text(pilot, "introspect top: keys")
                help_text = app.screen.body.plain  # type: ignore[attr-defined]
                for key in ("f profile", "S save an SVG screenshot", "G force a full GC"):
                    assert key in help_text

        run(scenario())


def test_the_task_page_shows_held_and_cpu(demo: AgentProcess) -> None:
    async def scenario() -> None:
        app = IntrospectApp(target=str(demo.pid), interval=0.3, initial_view="tasks")
        async with app.run_test(size=(160, 40)) as pilot:
            view = app.query_one(TasksView)
            await poll(pilot, lambda: view.page is not None and view.page.tasks, "a page")
            await pilot.press("enter")
            text = await poll_text(pilot, "held loop")
            assert "on CPU" in text

    run(scenario())
