"""The update stream: a full snapshot, then changed-only updates stamped with one time; one
shared snapshot per tick for many subscribers; a client that stops reading gets fewer updates
(`dropped`) while the others keep streaming; the client merges updates into full state."""

from __future__ import annotations

import itertools
import socket
import time

from introspect.client.connection import Client
from introspect.client.stream import SnapshotAssembler
from introspect.protocol import framing
from introspect.protocol import messages as m
from tests.attach.support import RawConnection, ask, start_host, unix_target
from tests.support.procs import wait_until


def test_full_then_changed_only_merged_into_full_state():
    with start_host(env={"HOST_SLEEPERS": "5"}) as proc, Client(unix_target(proc)) as client:
        assembler = SnapshotAssembler()
        updates = []
        with Client(unix_target(proc)) as admin:
            for update in client.subscribe(interval=0.2, top_tasks=50):
                snap = assembler.apply(update)
                updates.append((update, snap))
                if len(updates) == 3:  # cancel one sleeper mid-stream: ground truth changes
                    victim = admin.tasks(name="sleeper-3").tasks[0].id
                    admin.cancel(victim)
                if len(updates) >= 3 and not any(t.name == "sleeper-3" for t in snap.tasks.top):
                    break
                assert len(updates) < 60, "the cancelled task never left the stream"
        first, first_snap = updates[0]
        assert first.full and first.snapshot is not None and first.changed is None
        assert first_snap.tasks.total == 7  # main + 5 sleepers + ticker
        names = {t.name for t in first_snap.tasks.top}
        assert {f"sleeper-{i}" for i in range(5)} | {"ticker"} <= names
        for update, snap in updates[1:]:
            assert not update.full and update.snapshot is None and update.changed
            assert "node" not in update.changed  # nothing changed there: not resent
            assert m.changed_sections(update)["time"] == update.time == snap.time
            assert snap.node == first_snap.node  # merged: unchanged sections carried over
        seqs = [u.seq for u, _ in updates]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        last = updates[-1][1]
        assert last.tasks.total == 6 and "sleeper-3" not in {t.name for t in last.tasks.top}


def test_subscribers_share_one_snapshot_per_tick():
    with start_host() as proc:
        target = unix_target(proc)
        clients = [Client(target).connect() for _ in range(5)]
        try:
            streams = [c.subscribe(interval=0.25) for c in clients]
            for stream in streams:
                next(stream)  # everyone has the full snapshot
            before = int(ask(proc, "builds"))
            started = time.monotonic()
            seen = [[next(stream).seq for _ in range(8)] for stream in streams]
            elapsed = time.monotonic() - started
            builds = int(ask(proc, "builds")) - before
        finally:
            for c in clients:
                c.close()
        ticks = elapsed / 0.25
        # 5 subscribers × ~8 updates would be ~40 snapshots without sharing
        assert builds <= ticks + 4, (builds, ticks)
        shared = set(seen[0]).intersection(*seen[1:])
        assert len(shared) >= 4, seen


def test_a_client_that_stops_reading_gets_fewer_updates_others_keep_streaming():
    with start_host(env={"HOST_SLEEPERS": "3000"}) as proc:
        target = unix_target(proc)
        stalled = RawConnection(target)
        assert isinstance(stalled.handshake(), m.Welcome)
        stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.send(m.Subscribe(interval=0.1, top_tasks=1000))  # ~200 KB per update
        with Client(target) as healthy:
            stream = healthy.subscribe(interval=0.1, top_tasks=5)
            updates = list(itertools.islice(stream, 30))  # 3 s while the other reads nothing
            assert all(u.dropped == 0 for u in updates)
            assert updates[-1].time - updates[0].time > 2.0
        # now the stalled client reads: what it gets says how many updates it missed
        stalled.sock.settimeout(10)

        def reports_drops() -> bool:
            reply = m.decode_agent_message(framing.recv_frame_blocking(
                stalled.sock, framing.MAX_FRAME_TO_CLIENT))
            return isinstance(reply, m.Update) and reply.dropped > 5

        wait_until(reports_drops, timeout=20, interval=0, message="an update with dropped > 5")
        stalled.close()
        with Client(target) as after:  # and the agent is fine
            assert after.snapshot().tasks.total == 3002
