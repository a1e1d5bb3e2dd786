"""Enter on a queue opens its page: the variable it is bound to, its consumer and producers
(a busy consumer that never waits included), and its trend — against a live target."""

from __future__ import annotations

from introspect.tui.app import IntrospectApp
from tests.agent.test_queue_owners import PROGRAM
from tests.support.procs import AgentProcess
from tests.tui.support import poll, poll_text, run, screen_text


def test_enter_on_a_queue_shows_its_owners_and_trend() -> None:
    with AgentProcess.script(PROGRAM) as proc:
        proc.wait_for_line("running")

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.3)
            async with app.run_test(size=(120, 40)) as pilot:
                await poll_text(pilot, f"pid {proc.pid}")
                await pilot.press("5")
                # Names are looked up once per queue; owners fill in as get/put happen.
                await poll(pilot, lambda: "__main__.inbox" in screen_text(app)
                           and "signal_gateway" in screen_text(app), "the named inbox row")
                await poll(pilot, lambda: app.model.snapshot is not None and any(
                    q.bound_to == "__main__.inbox" and len(q.producers) == 2
                    for q in app.model.snapshot.queues), "both producers seen")
                table = app.screen.query_one("#queue-table")
                row = next(i for i, q in enumerate(
                    sorted(app.model.snapshot.queues, key=lambda q: (-q.length, q.name)))
                    if q.bound_to == "__main__.inbox")
                table.move_cursor(row=row)
                await pilot.press("enter")
                text = await poll_text(pilot, "CONSUMERS (get)")
                assert "queue __main__.inbox" in text
                consumers, producers = text.split("CONSUMERS (get)", 1)[1].split(
                    "PRODUCERS (put)", 1)
                assert "__main__.signal_gateway" in consumers
                assert "__main__.sensor" in producers and "__main__.operator" in producers
                await poll(pilot, lambda: "max " in screen_text(app), "a trend")
                await pilot.press("escape")
                await poll_text(pilot, "largest backlog first")

        run(scenario())
