"""Heavy requests (dumps) from many clients: built one at a time and shared, sent in slices,
so clients that never read can't grow the agent's memory per connection, the memory goes
back when they leave, and a dump flood doesn't stall the app's loop. Ground truth: RSS from
/proc and the lag of a heartbeat task in the target."""

from __future__ import annotations

import threading
import time

from introspect.client.connection import Client
from introspect.protocol import framing
from introspect.protocol import messages as m
from tests.security.support import ask, rss_bytes, start_target
from tests.support.procs import wait_until

TASKS = 20_000  # an 8 MB dump
MB = 1 << 20
# Before the fix: 40 unread dumps took RSS from 71 MB to 1347 MB, still 1347 MB after the
# clients left; a 4-client dump flood made the heartbeat 2.8 s late.
MAX_GROWTH_WITH_CLIENTS = 300 * MB
MAX_GROWTH_AFTER_CLIENTS = 100 * MB
MAX_FLOOD_LAG = 0.3  # 0.5 s before (and 2-3 dumps answered in 4 s); about 0.05-0.1 s after


def test_unread_dumps_stay_bounded_and_memory_returns_after_the_clients_leave():
    with start_target(tasks=TASKS) as proc:
        proc.wait_for_agent()
        # the first dump warms lasting caches (frame objects): not the clients' doing
        with Client(str(proc.pid), timeout=60) as warm:
            warm.dump(max_tasks=100_000)
        base = rss_bytes(proc.pid)
        clients = [Client(str(proc.pid), timeout=60).connect() for _ in range(40)]
        try:
            for client in clients:
                client.sock.sendall(framing.pack(m.encode(m.DumpRequest(id=1,
                                                                        max_tasks=100_000))))
            peak = 0

            def all_answered() -> bool:
                nonlocal peak
                peak = max(peak, rss_bytes(proc.pid))
                return all(_has_bytes(c) for c in clients)

            wait_until(all_answered, timeout=60, message="a reply started to every client")
            peak = max(peak, rss_bytes(proc.pid))  # 40 replies in flight, none read
            assert peak - base < MAX_GROWTH_WITH_CLIENTS, (base, peak)
        finally:
            for client in clients:
                client.close()
        wait_until(lambda: ask(proc, "clients") == "0", message="the clients gone")
        wait_until(lambda: rss_bytes(proc.pid) - base < MAX_GROWTH_AFTER_CLIENTS,
                   message=f"RSS back near {base >> 20} MB")


def test_dump_flood_keeps_the_app_loop_responsive_and_every_reply_has_its_own_id():
    with start_target(tasks=TASKS) as proc:
        proc.wait_for_agent()
        ask(proc, "lag")  # resets the heartbeat's worst lag
        stop = time.monotonic() + 4
        problems: list[str] = []
        answered = [0] * 4

        def flood(slot: int) -> None:
            with Client(str(proc.pid), timeout=60) as client:
                request_id = slot * 1_000_000
                while time.monotonic() < stop:
                    request_id += 1
                    client.sock.sendall(framing.pack(m.encode(
                        m.DumpRequest(id=request_id, max_tasks=100_000))))
                    reply = m.decode_agent_message(
                        framing.recv_frame_blocking(client.sock, framing.MAX_FRAME_TO_CLIENT))
                    if not (isinstance(reply, m.DumpReply) and reply.id == request_id
                            and reply.tasks_total >= TASKS):
                        problems.append(repr(reply)[:200])
                    answered[slot] += 1

        threads = [threading.Thread(target=flood, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not problems, problems[:3]
        assert all(answered), answered
        assert float(ask(proc, "lag")) < MAX_FLOOD_LAG


def _has_bytes(client: Client) -> bool:
    """Whether the agent has started sending this client its reply (nothing is consumed)."""
    import socket

    assert client.sock is not None
    try:
        return bool(client.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False
