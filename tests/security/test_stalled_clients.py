"""Clients that stop reading (SIGSTOP-ed processes) against a target with many tasks: their
connections are aborted once the stall timeout passes, so the agent's memory stays bounded,
their sockets are really closed (not left flushing forever), the connection count comes back
down and a fresh client is served. Bounds are for a 2-core machine running other work."""

from __future__ import annotations

import pytest

from introspect.client.connection import Client
from tests.security.support import ask, rss_bytes, socket_fds, start_target, stopped_clients
from tests.support.procs import wait_until

STALLED = 40
STALL_TIMEOUT = 2.0
MiB = 1024 * 1024


@pytest.mark.parametrize("mode", ["subscribe", "requests"])
def test_stalled_readers_are_aborted_and_their_resources_released(mode: str):
    env = {"INTROSPECT_STALL_TIMEOUT": str(STALL_TIMEOUT)}
    with start_target(env=env, tasks=3000) as proc:
        target = str(proc.wait_for_agent())
        with Client(target) as warm:  # the agent's own buffers and snapshot caches, warmed
            warm.tasks(limit=1000)
        rss_before = rss_bytes(proc.pid)
        sockets_before = socket_fds(proc.pid)
        peak = rss_before
        ask(proc, "lag")  # resets the app's worst loop lag
        with stopped_clients(target, mode, STALLED):

            def released() -> bool:
                nonlocal peak
                peak = max(peak, rss_bytes(proc.pid))
                return (int(ask(proc, "clients")) == 0
                        and socket_fds(proc.pid) <= sockets_before)

            # the old agent let go of a stalled stream after 60 s and kept its socket
            wait_until(released, timeout=40, interval=0.2,
                       message="every stalled connection aborted and closed")
            rss_after = rss_bytes(proc.pid)
            with Client(target) as fresh:  # while the stopped clients still exist
                assert fresh.snapshot().tasks.total >= 3000
        lag = float(ask(proc, "lag"))
        growth = peak - rss_before
        print(f"{mode}: RSS before {rss_before / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB, "
              f"after {rss_after / MiB:.1f} MiB; app loop lag at worst {lag * 1000:.0f} ms")
        assert lag < 2.0, f"the app's loop lagged {lag:.2f} s"  # it kept running
        # each stalled connection holds at most 256 KiB of unsent bytes plus the message
        # being written when it stalled, until it is aborted
        assert growth < 120 * MiB, f"agent RSS grew by {growth / MiB:.1f} MiB"
        counts = ask(proc, "counts")
        assert '"connection/stalled"' in counts, counts
