"""Fuzzing a real agent process with hypothesis (bounded example counts): random and truncated
frames, oversized length prefixes, wrong versions, valid frames with hostile contents. Each
connection must end in an error reply or a close; the agent's memory stays bounded, it keeps
serving, and the host app keeps running."""

from __future__ import annotations

import math
import socket
import struct

import msgspec
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from introspect.client.connection import Client
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.version import PROTOCOL_VERSION
from tests.attach.support import RawConnection, host_counter, start_host, unix_target

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REPLY_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def host():
    proc = start_host(env={"INTROSPECT_HANDSHAKE_TIMEOUT": "1", "HOST_SLEEPERS": "50"})
    with proc:
        target = unix_target(proc)
        agent = psutil.Process(proc.pid)
        rss_before = agent.memory_info().rss
        counter_before = host_counter(proc)
        yield proc, target
        # after every test of the module: bounded memory, still serving, host untouched
        assert agent.memory_info().rss - rss_before < 64 * 1024 * 1024
        with Client(target) as client:
            assert client.snapshot().tasks.total == 52
        assert host_counter(proc) > counter_before


def outcome(raw: RawConnection) -> str:
    """'error' (an ErrorReply came), 'closed' (the agent hung up), or what else came."""
    raw.sock.settimeout(REPLY_TIMEOUT)
    try:
        data = framing.recv_frame_blocking(raw.sock, framing.MAX_FRAME_TO_CLIENT)
    except (EOFError, framing.FrameError, ConnectionError):
        return "closed"
    reply = m.decode_agent_message(data)  # whatever the agent says is well-formed
    return "error" if isinstance(reply, m.ErrorReply) else type(reply).__name__


def send_and_hang_up(target: str, data: bytes) -> str:
    with RawConnection(target) as raw:
        try:
            raw.send_bytes(data)
            raw.sock.shutdown(socket.SHUT_WR)  # a truncated frame stays truncated
        except (BrokenPipeError, ConnectionResetError):
            return "closed"  # the agent already hung up on an oversized prefix
        result = outcome(raw)
        while result == "error":  # anything more must also be errors, then the close
            result = outcome(raw)
        return result


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_before_the_handshake(host, data: bytes):
    _proc, target = host
    assert send_and_hang_up(target, data) == "closed"


@FUZZ
@given(payload=st.binary(max_size=4096), cut=st.integers(min_value=0, max_value=4100))
def test_random_and_truncated_frames(host, payload: bytes, cut: int):
    _proc, target = host
    frame = framing.pack(payload)
    assert send_and_hang_up(target, frame[:cut]) == "closed"


@FUZZ
@given(size=st.integers(min_value=framing.MAX_HANDSHAKE_FRAME + 1, max_value=2**32 - 1))
def test_oversized_length_prefix_is_refused_before_reading(host, size: int):
    _proc, target = host
    with RawConnection(target) as raw:
        raw.send_bytes(struct.pack(">I", size) + b"x" * 64)  # no body follows: never waited on
        assert outcome(raw) == "closed"


@FUZZ
@given(versions=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=50),
       nonce=st.binary(max_size=100))
def test_wrong_versions(host, versions: list[int], nonce: bytes):
    _proc, target = host
    with RawConnection(target) as raw:
        raw.send(m.Hello(versions=versions, client="fuzz", client_nonce=nonce))
        if PROTOCOL_VERSION in versions:
            assert isinstance(raw.recv(), m.Challenge)
        else:
            reply = raw.recv()
            assert isinstance(reply, m.ErrorReply) and reply.code == "incompatible"
            assert outcome(raw) == "closed"


# --- valid frames, hostile contents (after a successful handshake) --------------------------
def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"  # msgpack: `depth` arrays of one element around nil


HOSTILE_VALUES = st.one_of(
    st.text(max_size=30_000),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.binary(max_size=1000),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=100),
)
TAGS = [str(cls.__struct_config__.tag) for cls in m.ClientMessage.__args__]
FIELDS = ["id", "top_tasks", "offset", "limit", "sort", "descending", "kind", "name", "state",
          "location", "min_age", "text", "task_id", "max_tasks", "interval", "message",
          "generation", "duration", "rate", "top", "width", "height", "data", "proof"]


@FUZZ
@given(tag=st.sampled_from([*TAGS, "nope", ""]),
       fields=st.dictionaries(st.sampled_from(FIELDS), HOSTILE_VALUES, max_size=6),
       depth=st.sampled_from([0, 0, 100, 100_000]))
def test_hostile_requests_get_an_answer(host, tag: str, fields: dict, depth: int):
    _proc, target = host
    if tag in ("subscribe", "console_open", "profile", "gc_collect", "cancel_task"):
        # the actions themselves are tested elsewhere; here only their decoding and checks
        fields = {**fields, "interval": math.nan, "duration": -1.0, "task_id": -1,
                  "generation": fields.get("generation", 0)}
    body = msgspec.msgpack.encode({"type": tag, **fields})
    if depth:
        body = body[:-1] + _nested(depth) if fields else _nested(depth)
    with RawConnection(target) as raw:
        assert isinstance(raw.handshake(), m.Welcome)
        if len(body) > framing.MAX_FRAME_TO_AGENT:
            try:
                raw.send_bytes(framing.pack(body))
            except (BrokenPipeError, ConnectionResetError):
                return  # the agent hung up on the length prefix before the body was sent
            assert outcome(raw) == "closed"
            return
        raw.send_bytes(framing.pack(body))
        result = outcome(raw)
        assert result != "closed", "a decodable-size frame must get an answer"
        if tag in ("hello", "authenticate", "nope", "", "console_input"):
            assert result == "error"
        raw.send(m.Ping(id=7))  # the connection is still usable afterwards
        while True:
            reply = raw.recv()
            if not isinstance(reply, m.Update):
                break
        assert isinstance(reply, m.Ack) and reply.id == 7, reply


def test_negative_and_huge_page_sizes(host):
    _proc, target = host
    with Client(target) as client:
        for bad in ({"limit": -1}, {"offset": -5}):
            with pytest.raises(Exception, match="must be >= 0"):
                client.tasks(**bad)
        page = client.tasks(limit=10**9)
        assert page.matched == 52 and len(page.tasks) == 52  # clamped to the page maximum
        assert len(client.tasks(name="sleeper-", limit=10**9, offset=10**12).tasks) == 0
        assert client.snapshot(top_tasks=10**9).tasks.top  # clamped, not refused
        with pytest.raises(Exception, match="longer than"):
            client.tasks(text="x" * 5000)
