"""Connections can't crowd the operator out: a logged-in request connection that says nothing
is closed after the idle timeout (a stream is never idle); one host's half-open logins are
capped, so hundreds of them don't make a control client `busy`; and read clients filling the
session cap leave slots for the control role."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from introspect.protocol import framing
from introspect.protocol import messages as m
from tests.attach.support import RawConnection
from tests.security.support import (
    CONTROL_TOKEN,
    READ_TOKEN,
    ask,
    raw_connect,
    raw_login,
    start_target,
    tcp_address,
    write_tokens,
)
from tests.support.procs import wait_until


def test_an_idle_request_connection_is_closed_but_a_stream_is_not():
    with start_target(env={"INTROSPECT_IDLE_TIMEOUT": "1"}) as proc:
        target = str(proc.wait_for_agent())
        with RawConnection(target) as idle, RawConnection(target) as streaming:
            assert isinstance(idle.handshake(), m.Welcome)
            assert isinstance(streaming.handshake(), m.Welcome)
            streaming.send(m.Subscribe(interval=0.2, top_tasks=5))
            assert idle.closed_by_peer(timeout=20), "an idle logged-in connection stays open"
            # the stream keeps flowing well past the idle timeout: it is not idle
            started, updates = time.monotonic(), 0
            while time.monotonic() - started < 3.0:
                assert isinstance(streaming.recv(), m.Update)
                updates += 1
            assert updates >= 5
        counts = ask(proc, "counts")
        assert '"connection/idle"' in counts, counts


def test_half_open_logins_from_one_host_do_not_lock_out_control(tmp_path: Path):
    agent_args = ["--listen", "tcp://127.0.0.1:0", *write_tokens(tmp_path)]
    with start_target(agent_args, env={"INTROSPECT_HANDSHAKE_TIMEOUT": "60"}) as proc:
        address = tcp_address(proc)
        with contextlib.ExitStack() as stack:
            for _ in range(400):  # connect and say nothing, from one host
                stack.enter_context(raw_connect(address, source="127.0.0.2"))
            # accepted in order: these come after all 400
            busy = 0
            for _ in range(30):
                reply, sock = raw_login(address, CONTROL_TOKEN, source="127.0.0.1")
                sock.close()
                busy += isinstance(reply, m.ErrorReply)
                assert isinstance(reply, m.Welcome | m.ErrorReply), reply
            assert busy == 0, f"control login refused {busy} times out of 30"


def test_read_clients_filling_the_cap_leave_room_for_control(tmp_path: Path):
    agent_args = ["--listen", "tcp://127.0.0.1:0", *write_tokens(tmp_path)]
    with start_target(agent_args) as proc:
        address = tcp_address(proc)
        with contextlib.ExitStack() as stack:
            admitted = refused = 0
            for _ in range(140):
                reply, sock = raw_login(address, READ_TOKEN)
                stack.callback(sock.close)
                if isinstance(reply, m.Welcome):
                    admitted += 1
                else:
                    assert isinstance(reply, m.ErrorReply) and reply.code == "busy", reply
                    refused += 1
            assert refused > 0 and admitted < 128
            for _ in range(3):
                reply, sock = raw_login(address, CONTROL_TOKEN)
                stack.callback(sock.close)
                assert isinstance(reply, m.Welcome) and reply.role == "control", reply
            # and the control sessions are served, not just welcomed
            sock.sendall(framing.pack(m.encode(m.Ping(id=1))))
            pong = m.decode_agent_message(framing.recv_frame_blocking(sock, 1 << 20))
            assert isinstance(pong, m.Ack) and pong.id == 1
        wait_until(lambda: ask(proc, "clients") == "0", message="every connection released")
