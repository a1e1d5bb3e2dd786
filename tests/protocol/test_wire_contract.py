"""The wire contract on its own: strict decoding, frame limits, the auth proof, and the
client-side merge of changed-only updates."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from introspect.client.stream import SnapshotAssembler, StreamGap
from introspect.protocol import auth, framing
from introspect.protocol import messages as m
from introspect.protocol.snapshot import (
    ErrorsInfo,
    GcInfo,
    LoopInfo,
    Node,
    ProcessInfo,
    Snapshot,
    TasksInfo,
)


def small_snapshot(time: float = 1.0, total: int = 3) -> Snapshot:
    return Snapshot(
        time=time, node=Node(pid=1, argv=["app"], hostname="h", python="3.11", started_at=0),
        process=ProcessInfo(uptime_seconds=1, cpu_seconds=0, rss_bytes=1, open_fds=1, threads=1),
        loop=LoopInfo(running=True, lag_seconds=0, lag_p99_seconds=0, ready=0, scheduled=0,
                      blocked_for_seconds=0),
        tasks=TasksInfo(total=total, by_kind=[], top=[]), queues=[], threads=[],
        gc=GcInfo(collections=[0, 0, 0], collected=[0, 0, 0], uncollectable=[0, 0, 0],
                  pause_seconds_total=0, pause_max_seconds=0),
        errors=ErrorsInfo(total=0, recent=[]), events=[])


def test_client_messages_round_trip_and_nothing_else_decodes():
    for message in (m.Hello(versions=[1], client_nonce=b"x" * 32), m.Authenticate(proof=b"p"),
                    m.TaskListRequest(id=3, name="worker", limit=5), m.CancelTask(task_id=9),
                    m.Subscribe(interval=0.5), m.SetInterval(interval=2.0)):
        assert m.decode_client_message(m.encode(message)) == message
    # an agent message is not a client message; unknown tags and wrong types are refused
    for bad in (m.encode(m.Ack()), msgspec.msgpack.encode({"type": "exec", "code": "1"}),
                msgspec.msgpack.encode({"type": "task_list", "limit": "10"}),
                msgspec.msgpack.encode({"type": "cancel_task"}),  # required field missing
                b"\x80", b"", b"\xc1"):
        with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
            m.decode_client_message(bad)


def test_no_pickle_anywhere_in_the_protocol():
    from pathlib import Path

    import introspect.protocol as package

    for path in Path(package.__file__).parent.glob("*.py"):
        assert "pickle" not in path.read_text().replace("never pickle", ""), path


def read(data: bytes, limit: int) -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await framing.read_frame(reader, limit)

    return asyncio.run(go())


def test_frame_limits_and_truncation():
    assert read(framing.pack(b"abc"), 10) == b"abc"
    with pytest.raises(framing.FrameError, match="exceeds the limit"):
        read(framing.pack(b"x" * 11), 10)
    with pytest.raises(framing.FrameError, match="exceeds the limit"):
        read(b"\xff\xff\xff\xff", framing.MAX_FRAME_TO_AGENT)  # refused before any body
    with pytest.raises(framing.FrameError, match="truncated"):
        read(framing.pack(b"abcdef")[:6], 100)
    with pytest.raises(framing.FrameError, match="truncated frame header"):
        read(b"\x00\x00", 100)
    with pytest.raises(EOFError):
        read(b"", 100)


def test_proof_binds_token_and_both_nonces():
    a, c = auth.new_nonce(), auth.new_nonce()
    p = auth.proof("secret", a, c)
    assert auth.verify("secret", a, c, p)
    assert not auth.verify("other", a, c, p)
    assert not auth.verify("secret", auth.new_nonce(), c, p)
    assert not auth.verify("secret", a, auth.new_nonce(), p)
    assert b"secret" not in p


def test_assembler_merges_changed_sections_into_full_state():
    first = small_snapshot(time=1.0, total=3)
    assembler = SnapshotAssembler()
    with pytest.raises(StreamGap):
        assembler.apply(m.Update(seq=1, time=1.0, full=False, changed={}))
    wire = m.decode_agent_message(m.encode(m.Update(seq=1, time=1.0, full=True, snapshot=first)))
    assert assembler.apply(wire) == first
    changed = {"time": 2.0, "tasks": msgspec.to_builtins(TasksInfo(total=7, by_kind=[], top=[])),
               "a_future_section": {"x": 1}}
    wire = m.decode_agent_message(m.encode(m.Update(seq=2, time=2.0, full=False, dropped=4,
                                                    changed=changed)))
    merged = assembler.apply(wire)
    assert merged.tasks.total == 7 and merged.time == 2.0 and merged.node == first.node
    assert assembler.dropped == 4 and assembler.seq == 2
