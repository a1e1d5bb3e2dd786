"""Queue labels do not depend on where the service is deployed: a queue created by the app is
named relative to the project (its directory on sys.path / the working directory), not by the
absolute path of this release."""

from __future__ import annotations

from tests.support.procs import AgentProcess, wait_until

APP = r'''
import asyncio

async def main():
    inbox = asyncio.Queue()
    inbox.put_nowait("x")
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
'''


def test_queue_label_is_relative_to_the_project() -> None:
    with AgentProcess.script(APP) as proc:
        proc.wait_for_line("ready")
        names = wait_until(lambda: [q.name for q in proc.snapshot().queues
                                    if q.type == "asyncio" and q.length == 1],
                           message="the app's queue")
        assert names == ["app.py:5"], names
