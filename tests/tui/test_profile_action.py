"""Threads view, `f`: the agent profiles its own process with py-spy and the hottest
functions of a CPU-spinning target appear, refreshed live until `f` again."""

from __future__ import annotations

import textwrap

from introspect.tui.app import IntrospectApp
from introspect.tui.views.threads import ThreadsView
from tests.support.procs import AgentProcess
from tests.tui.support import poll, run

SPINNER = textwrap.dedent('''
    import asyncio
    def spin_the_cpu_hot():
        total = 0
        for i in range(20000):
            total += i * i
        return total
    async def main():
        print("ready", flush=True)
        while True:
            spin_the_cpu_hot()
            await asyncio.sleep(0)
    asyncio.run(main())
''')


def test_profile_action_shows_the_hottest_function_live() -> None:
    with AgentProcess.script(SPINNER) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="threads")
            async with app.run_test(size=(120, 40)) as pilot:
                view = app.query_one(ThreadsView)
                await poll(pilot, lambda: app.model.snapshot is not None, "first update")
                await pilot.press("f")
                reply = await poll(pilot, lambda: view.last_profile, "a profile", timeout=40)
                hottest = max(reply.functions, key=lambda f: f.own)
                assert hottest.function == "spin_the_cpu_hot"
                assert "spin_the_cpu_hot" in str(
                    view.query_one("#profile-result").render())
                assert view.profiling  # live: it keeps sampling until `f` again
                await pilot.press("f")
                assert not view.profiling

        run(scenario())
