"""Every view against a live demo agent: what the agent reports appears on screen."""

from __future__ import annotations

from introspect.tui.app import IntrospectApp
from introspect.tui.views.tasks import TasksView
from tests.support.procs import AgentProcess, wait_until
from tests.tui.support import poll, poll_text, run, screen_text


def test_every_view_shows_what_the_agent_reports(demo: AgentProcess) -> None:
    with demo.client() as client:
        truth = client.snapshot()
        # The demo reports errors every cycle (6 s at speed 10): wait for one to be there.
        wait_until(lambda: client.snapshot().errors.total > 0, message="a demo crash report")

    async def scenario() -> None:
        app = IntrospectApp(target=str(demo.pid), interval=0.3)
        async with app.run_test(size=(120, 40)) as pilot:
            await poll_text(pilot, f"pid {demo.pid}")
            assert "● live" in screen_text(app)

            await pilot.press("1")
            text = await poll_text(pilot, "--speed")  # argv of the target
            assert truth.node.python in text and "unix:" in text

            await pilot.press("2")
            await poll(pilot, lambda: len(app.model.history) >= 3, "3 samples of history")
            text = await poll_text(pilot, "loop lag p99")
            for label in ("run-queue", "tasks", "memory (RSS)", "CPU", "GC collections",
                          "GC pause", "exceptions"):
                assert label in text

            await pilot.press("3")
            text = await poll_text(pilot, "media-gateway-consumer")
            assert "matching" in text and "AWAITING" in text

            await pilot.press("4")
            text = await poll_text(pilot, "tasks]")  # a subtree count
            assert "roots" in text

            await pilot.press("5")
            text = await poll_text(pilot, "bottleneck.py")
            assert "comments.py" in text and "TREND" in text

            await pilot.press("6")
            text = await poll_text(pilot, "MainThread")
            assert "demo-io" in text and "STACK of" in text
            await poll_text(pilot, "_run_once")  # the loop thread's stack from the agent

            await pilot.press("7")
            text = await poll_text(pilot, "GARBAGE COLLECTOR")
            assert "uncollectable" in text and "rss" in text

            await pilot.press("8")
            await poll_text(pilot, "unhandled exceptions")
            text = await poll(pilot, lambda: any(
                t in screen_text(app) for t in ("UnexpectedMessage", "DemoThreadError",
                                                 "DemoCallbackError", "DemoUnretrievedError"))
                and screen_text(app), "a demo exception in the errors table")
            await pilot.press("enter")
            await poll_text(pilot, "Traceback")  # the full traceback page
            await pilot.press("escape")

            await pilot.press("9")
            await poll_text(pilot, "python_asyncio_tasks")  # read from the agent's /metrics

            await pilot.press("0")
            await poll_text(pilot, f"▶ {demo.pid}")  # the node we watch, from `ps`

            await pilot.press("question_mark")
            await poll_text(pilot, "introspect top: keys")
            await pilot.press("escape")
            await pilot.press("q")

    run(scenario())


def test_pause_freezes_the_display_not_the_stream(demo: AgentProcess) -> None:
    async def scenario() -> None:
        app = IntrospectApp(target=str(demo.pid), interval=0.2)
        async with app.run_test(size=(100, 30)) as pilot:
            await poll(pilot, lambda: app.model.updates >= 1, "first update")
            await pilot.press("p")
            await poll_text(pilot, "display paused")
            header = screen_text(app).splitlines()[:2]
            seen = app.model.updates
            await poll(pilot, lambda: app.model.updates >= seen + 3, "updates keep coming")
            assert screen_text(app).splitlines()[:2] == header
            await pilot.press("p")
            await poll(pilot, lambda: "display paused" not in screen_text(app), "resume")

    run(scenario())


def test_tasks_view_is_usable_at_80x24(demo: AgentProcess) -> None:
    async def scenario() -> None:
        app = IntrospectApp(target=str(demo.pid), interval=0.3, initial_view="tasks")
        async with app.run_test(size=(80, 24)) as pilot:
            text = await poll_text(pilot, "gateway-producer")
            lines = text.splitlines()
            assert len(lines) == 24 and "● live" in lines[0]
            assert "Quit" in lines[-1]  # the footer still shows
            assert isinstance(app.active_view(), TasksView)

    run(scenario())
