"""Tasks view, `x`: exact accounting from the TUI (issue 6). Asked first ("no" sends nothing),
then the page fills with what the target really ran: a burst of a known number of steps,
started by the test while the session runs; `X` reopens the latest report. Under uvloop the
agent refuses and its reason is shown; the System view lists the agent's limitations."""

from __future__ import annotations

from introspect.client.connection import AgentError, Client
from introspect.protocol import discovery
from introspect.tui.app import IntrospectApp
from introspect.tui.views.exact import ExactScreen
from introspect.tui.views.tasks import TasksView
from introspect.tui.widgets.dialogs import ConfirmScreen
from tests.support.procs import AgentProcess, wait_until
from tests.tui.support import fixture_process, poll, poll_text, run, screen_text

STEPS = 40
SESSION_SECONDS = 4.0

# One line on stdin starts a burst: a task that runs exactly STEPS steps, then ends.
TARGET = f"""
    import asyncio, sys, threading

    async def burst():
        for _ in range({STEPS} - 1):  # the first step, then one per yield
            await asyncio.sleep(0)
        print("burst done", flush=True)

    async def main():
        loop = asyncio.get_running_loop()
        keep = set()

        def start_burst():
            keep.add(asyncio.create_task(burst(), name="burst-task"))

        def read():
            for _line in sys.stdin:
                loop.call_soon_threadsafe(start_burst)

        threading.Thread(target=read, daemon=True).start()
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""

UVLOOP_TARGET = """
    import asyncio, uvloop

    async def main():
        print("ready", flush=True)
        await asyncio.sleep(3600)

    uvloop.install()
    asyncio.run(main())
"""


def notifications(app: IntrospectApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def start_burst(proc: AgentProcess) -> None:
    assert proc.proc.stdin is not None
    proc.proc.stdin.write("burst\n")
    proc.proc.stdin.flush()


def test_exact_accounting_asked_first_then_shows_what_the_target_ran() -> None:
    with AgentProcess.script(TARGET) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        truth = Client(str(proc.pid)).connect()

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="tasks")
            async with app.run_test(size=(140, 40)) as pilot:
                view = app.query_one(TasksView)
                await poll(pilot, lambda: view.page is not None, "the first page")
                # "No" sends nothing: the target never had a session.
                await pilot.press("x")
                await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
                assert "Time every step of every task for 30 s?" in screen_text(app)
                await pilot.press("n")
                await poll(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "back")
                assert truth.exact_report() is None

                view.exact_seconds = SESSION_SECONDS
                await pilot.press("x")
                await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
                assert f"for {SESSION_SECONDS:g} s?" in screen_text(app)
                await pilot.press("y")
                screen = await poll(pilot, lambda: isinstance(app.screen, ExactScreen)
                                    and app.screen, "the exact page")
                await poll(pilot, lambda: screen.report and screen.report.running,
                           "a running session")
                assert "running" in screen_text(app)
                start_burst(proc)
                await poll(pilot, lambda: any("burst done" in ln for ln in proc.stdout),
                           "the burst ran")
                await poll(pilot, lambda: screen.report and not screen.report.running,
                           "the session finished", timeout=SESSION_SECONDS + 15)
                text = await poll_text(pilot, "finished")
                report = truth.exact_report()
                assert report is not None and not report.running
                assert report.kinds["__main__.burst"].steps == STEPS
                assert screen.report.kinds == report.kinds
                kind_line = next(ln for ln in text.splitlines() if "__main__.burst" in ln)
                assert f" {STEPS} " in kind_line
                task_line = next(ln for ln in text.splitlines() if "burst-task" in ln)
                assert f" {STEPS} " in task_line
                assert f"of {SESSION_SECONDS:g}s" in text
                assert report.implementation in text

                await pilot.press("escape")
                await poll(pilot, lambda: not isinstance(app.screen, ExactScreen), "closed")
                # `X` reopens the latest report without starting another one.
                await pilot.press("X")
                reopened = await poll(pilot, lambda: isinstance(app.screen, ExactScreen)
                                      and app.screen is not screen and app.screen, "reopened")
                await poll(pilot, lambda: reopened.report, "the report")
                assert reopened.report.started == report.started
                await poll_text(pilot, "burst-task")

        try:
            run(scenario())
        finally:
            truth.close()


def test_exact_refused_under_uvloop_shows_why_and_lists_limitations() -> None:
    with AgentProcess.script(UVLOOP_TARGET) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        with proc.client() as client:
            limitations = client.snapshot().agent.limitations
            try:
                client.exact_accounting(1.0)
            except AgentError as exc:
                refusal = str(exc)
            else:
                raise AssertionError("the agent accepted exact accounting under uvloop")
        exact_note = next(note for note in limitations if note.startswith("exact accounting"))

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="system")
            async with app.run_test(size=(200, 40)) as pilot:
                text = await poll_text(pilot, "limitations")
                assert exact_note[:60] in text
                await pilot.press("3")
                view = app.query_one(TasksView)
                await poll(pilot, lambda: view.page is not None, "the first page")
                await pilot.press("x")
                await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
                await pilot.press("y")
                await poll(pilot, lambda: any(refusal in n for n in notifications(app)),
                           "the agent's refusal notified")
                assert not isinstance(app.screen, ExactScreen)

        run(scenario())


SERVE_TCP = """
    import asyncio, introspect

    async def main():
        introspect.start()
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
"""


def agent_tcp_address(proc: AgentProcess) -> str:
    def address() -> str | None:
        ann = next((a for a in discovery.list_agents() if a.pid == proc.pid), None)
        return ann.tcp if ann else None

    return wait_until(address, message="the agent's TCP address")


def test_control_keys_on_a_read_only_connection_say_so_before_asking() -> None:
    """x, c, G and f with a read token: "read-only" at once, no question, nothing started."""
    env = {"INTROSPECT_LISTEN": "tcp://127.0.0.1:0", "INTROSPECT_TOKEN": "control-secret-012345",
           "INTROSPECT_READ_TOKEN": "read-secret-0123456"}
    with AgentProcess.script(SERVE_TCP, under_run=False, env=env) as proc:
        proc.wait_for_line("ready")
        target = agent_tcp_address(proc)

        async def scenario() -> None:
            app = IntrospectApp(target=target, token="read-secret-0123456", interval=0.5,
                                initial_view="tasks")
            async with app.run_test(size=(140, 40)) as pilot:
                view = app.query_one(TasksView)
                await poll(pilot, lambda: view.page is not None and view.page.tasks,
                           "the first page")
                for keys in (["x"], ["c"], ["7", "G"], ["6", "f"]):
                    before = len(notifications(app))
                    await pilot.press(*keys)
                    await poll(pilot, lambda b=before: len(notifications(app)) > b,
                               f"a notice for {keys}")
                    assert "read-only" in notifications(app)[-1], notifications(app)
                    assert not isinstance(app.screen, (ConfirmScreen, ExactScreen)), keys

        run(scenario())
        with Client(target, token="control-secret-012345").connect() as client:
            assert client.exact_report() is None  # nothing was started


def test_system_view_says_none_without_limitations() -> None:
    with fixture_process() as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:  # a plain loop: nothing missing once the agent saw it
            wait_until(lambda: client.snapshot().agent.limitations == [],
                       message="a plain target without limitations")

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="system")
            async with app.run_test(size=(200, 40)) as pilot:
                text = await poll_text(pilot, "limitations")
                line = next(ln for ln in text.splitlines() if "limitations" in ln)
                assert line.split("limitations", 1)[1].split() == ["none"]

        run(scenario())


def test_exact_needs_a_live_target_in_replay() -> None:
    from introspect.recording import read_recording
    from tests.tui.support import RECORDING

    async def scenario() -> None:
        recording = read_recording(RECORDING)
        app = IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                            replay_playing=False, initial_view="tasks")
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("x")
            await poll(pilot, lambda: any("live target" in n for n in notifications(app)),
                       "replay refusal notified")
            assert not isinstance(app.screen, ConfirmScreen | ExactScreen)
            await pilot.press("X")
            await pilot.pause()
            assert not isinstance(app.screen, ExactScreen)

    run(scenario())
