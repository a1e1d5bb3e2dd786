"""Guessing tokens is slow and quiet: a TCP token shorter than 16 characters is refused at
start; a host that keeps failing waits longer for each answer while other hosts are answered
at once (the wait is its own, not the server's); refusals are audited as a few lines with
counts, not one line per try; successful logins are audited too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from introspect.protocol import framing
from introspect.protocol import messages as m
from tests.security.support import (
    CONTROL_TOKEN,
    READ_TOKEN,
    raw_connect,
    raw_login,
    start_target,
    tcp_address,
    write_tokens,
)
from tests.support.procs import wait_until


def audit_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_short_tcp_token_is_refused_at_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTROSPECT_TOKEN")}
    out = subprocess.run([sys.executable, "-m", "introspect", "run", "--listen",
                          "tcp://0.0.0.0:0", "--", sys.executable, "-c", "print('app ran')"],
                         capture_output=True, text=True, timeout=60,
                         env={**env, "INTROSPECT_TOKEN": "x"})
    assert out.returncode != 0 and "app ran" not in out.stdout, out
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("introspect: error:"), out.stderr
    assert "at least 16" in lines[0]


def test_failures_slow_down_that_host_only(tmp_path: Path):
    agent_args = ["--listen", "tcp://127.0.0.1:0", *write_tokens(tmp_path)]
    with start_target(agent_args, env={"INTROSPECT_HANDSHAKE_TIMEOUT": "30"}) as proc:
        address = tcp_address(proc)
        waits = []
        for _ in range(4):
            started = time.monotonic()
            reply, sock = raw_login(address, "wrong-token-guess-000000", source="127.0.0.2")
            waits.append(time.monotonic() - started)
            sock.close()
            assert isinstance(reply, m.ErrorReply) and reply.code == "auth_failed", reply
        # answers held back 0.25, 0.5, 1, 2 s: the fourth can't come sooner than 2 s
        assert waits[3] >= 2.0, waits
        # the fifth try waits 4 s; meanwhile another host is answered, right or wrong
        attacker: list[m.Message] = []
        fifth = threading.Thread(target=lambda: attacker.append(
            raw_login(address, "wrong-token-guess-000000", source="127.0.0.2")[0]))
        fifth.start()
        try:
            reply, sock = raw_login(address, "another-wrong-token-0000", source="127.0.0.3")
            sock.close()
            assert isinstance(reply, m.ErrorReply) and reply.code == "auth_failed"
            reply, sock = raw_login(address, CONTROL_TOKEN, source="127.0.0.1")
            sock.close()
            assert isinstance(reply, m.Welcome) and reply.role == "control"
            assert not attacker, "the attacker was answered before the other hosts"
        finally:
            fifth.join(30)
        assert isinstance(attacker[0], m.ErrorReply)


def test_refusals_are_aggregated_and_logins_audited(tmp_path: Path):
    audit = tmp_path / "audit.log"
    agent_args = ["--listen", "tcp://127.0.0.1:0", *write_tokens(tmp_path)]
    with start_target(agent_args, env={"INTROSPECT_AUDIT_LOG": str(audit)}) as proc:
        address = tcp_address(proc)
        tries = 500
        for _ in range(tries):  # garbage instead of a hello, as fast as the agent answers
            with raw_connect(address, source="127.0.0.4") as sock:
                sock.sendall(framing.pack(b"\xc1 not a hello"))
                framing.recv_frame_blocking(sock, 1 << 20)
        for token, role in ((CONTROL_TOKEN, "control"), (READ_TOKEN, "read")):
            reply, sock = raw_login(address, token)
            sock.close()
            assert isinstance(reply, m.Welcome) and reply.role == role

        def invalid_lines() -> list[dict]:
            lines = [ln for ln in audit_lines(audit)
                     if (ln["action"], ln["outcome"]) == ("handshake", "invalid")]
            counted = sum(ln.get("repeated", 1) for ln in lines)
            return lines if counted == tries else []

        # the first refusal at once, the rest in one line when the 10 s window closes
        lines = wait_until(invalid_lines, timeout=30, interval=0.2,
                           message=f"{tries} refusals accounted for in the audit log")
        assert len(lines) <= 3, f"{len(lines)} audit lines for {tries} refusals"
        logins = [ln for ln in audit_lines(audit) if ln["action"] == "login"]
        assert {(ln["outcome"], ln["role"]) for ln in logins} == {("ok", "control"),
                                                                  ("ok", "read")}
        assert all(ln["peer"].startswith("127.0.0.1:") for ln in logins)
