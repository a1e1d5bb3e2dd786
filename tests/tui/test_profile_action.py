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
                # Live profiles refresh: the first ones of a loaded machine may hold a handful
                # of samples, where the agent's own threads can outnumber the spinner's.
                def spinner_hottest() -> object:
                    reply = view.last_profile
                    if reply is None or not reply.functions:
                        return None
                    hottest = max(reply.functions, key=lambda f: f.own)
                    return reply if hottest.function == "spin_the_cpu_hot" else None

                await poll(pilot, spinner_hottest, "a profile with spin_the_cpu_hot hottest",
                           timeout=40)
                assert "spin_the_cpu_hot" in str(
                    view.query_one("#profile-result").render())
                assert view.profiling  # live: it keeps sampling until `f` again
                await pilot.press("f")
                assert not view.profiling

        run(scenario())
