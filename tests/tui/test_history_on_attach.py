"""History on attach: `top` draws the agent's recent past the moment it connects, so the Load
charts hold samples older than the connection."""

from __future__ import annotations

import itertools
import re
import time

from introspect.tui.app import IntrospectApp
from tests.support.procs import wait_until
from tests.tui.support import fixture_process, poll, poll_text, run, screen_text


def test_load_charts_start_with_the_agents_recent_past() -> None:
    with fixture_process() as proc:
        with proc.client() as client:
            past = wait_until(lambda: len(client.history()) >= 4 and client.history(),
                              timeout=30, interval=0.3, message="4 s of agent history")
        assert all(b.time > a.time for a, b in itertools.pairwise(past))

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=5.0)  # slow stream: 1 snapshot
            connected_at = time.time()
            async with app.run_test(size=(120, 40)) as pilot:
                await poll_text(pilot, f"pid {proc.pid}")
                await poll(pilot, lambda: len(app.model.history) >= 4, "seeded history")
                older = [s for s in app.model.history if s.time < connected_at]
                assert len(older) >= 4, list(app.model.history)
                assert [s.time for s in app.model.history] == sorted(
                    s.time for s in app.model.history)
                await pilot.press("2")
                text = await poll_text(pilot, "loop lag p99")
                assert "tasks" in text and "memory (RSS)" in text
                assert any(s.tasks > 0 and s.rss > 0 for s in older)
                # The charts span the seeded past (not one or two streamed snapshots).
                spans = [int(n) for n in re.findall(r"\(last (\d+)s\)", screen_text(app))]
                assert spans and min(spans) >= 3, spans
                assert app.model.updates <= 2  # the stream is slow: the span is the history's

        run(scenario())
