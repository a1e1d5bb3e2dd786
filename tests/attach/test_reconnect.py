"""Kill -9 the agent's process while clients stream: they report "disconnected", retry with
backoff, and reconnect when a new process listens at the same address."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from pathlib import Path

from introspect.client.stream import Backoff, Connected, Disconnected, Tick, watch
from tests.attach.support import start_host

CLIENTS = 3


def test_clients_survive_kill_9_and_find_the_new_process():
    directory = Path(tempfile.mkdtemp(prefix="introspect-rc-"))
    address = f"unix:{directory / 'service.sock'}"
    first = start_host(["--listen", address])
    second = None
    try:
        async def follow(events: list[object], stop: asyncio.Event) -> None:
            stream = watch(address, interval=0.1, timeout=5,
                           backoff=Backoff(initial=0.05, maximum=0.4))
            try:
                async for event in stream:
                    events.append(event)
                    if stop.is_set():
                        return
            finally:
                await stream.aclose()

        async def until(predicate, what: str, timeout: float = 20.0) -> None:
            async def poll() -> None:
                while not predicate():
                    await asyncio.sleep(0.02)
            try:
                await asyncio.wait_for(poll(), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out waiting for {what}") from None

        def ticks_from(events: list[object], pid: int) -> int:
            return sum(1 for e in events if isinstance(e, Tick) and e.snapshot.node.pid == pid)

        async def scenario() -> list[list[object]]:
            nonlocal second
            logs: list[list[object]] = [[] for _ in range(CLIENTS)]
            stop = asyncio.Event()
            followers = [asyncio.ensure_future(follow(log, stop)) for log in logs]
            await until(lambda: all(ticks_from(log, first.pid) >= 2 for log in logs),
                        "updates from the first process")
            first.proc.send_signal(signal.SIGKILL)
            await until(lambda: all(sum(isinstance(e, Disconnected) for e in log) >= 2
                                    for log in logs), "disconnected, then retries")
            second = await asyncio.to_thread(start_host, ["--listen", address])
            await until(lambda: all(ticks_from(log, second.pid) >= 2 for log in logs),
                        "updates from the new process")
            stop.set()
            await asyncio.wait_for(asyncio.gather(*followers), 10)
            return logs

        logs = asyncio.run(scenario())
        for log in logs:
            connected = [e for e in log if isinstance(e, Connected)]
            assert [c.agent_pid for c in connected] == [first.pid, second.pid]
            gone = [e for e in log if isinstance(e, Disconnected)]
            assert "disconnected" in gone[0].reason or "closed" in gone[0].reason
            retries = [e for e in gone[1:]]
            assert all("not running" in e.reason or "refused" in e.reason
                       or "no such" in e.reason for e in retries), retries
            backoffs = [e.backoff for e in gone]
            assert backoffs[1] > backoffs[0] * 1.5 and max(backoffs) <= 0.4 * 1.1
            # order: Connected(first), ticks, Disconnected..., Connected(second), ticks
            kinds = [type(e).__name__ for e in log]
            assert kinds.index("Disconnected") < len(kinds) - 1 - kinds[::-1].index("Connected")
    finally:
        first.__exit__(None, None, None)
        if second is not None:
            second.__exit__(None, None, None)
