"""Wrong token, no token, an expired handshake, a read token attempting control actions: each
is refused with a clear error, audited (logger + file + counts), and the agent keeps serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from introspect.client.connection import AgentError, Client
from introspect.errors import AuthError
from introspect.protocol import messages as m
from introspect.protocol.version import PROTOCOL_VERSION
from tests.attach.support import (
    CONTROL_TOKEN,
    READ_TOKEN,
    RawConnection,
    audit_counts,
    control_client,
    host_counter,
    start_host,
    tcp_target,
    token_files,  # noqa: F401 - fixture
)
from tests.support.procs import wait_until


@pytest.fixture
def tcp_host(tmp_path: Path, token_files: dict[str, str]):  # noqa: F811
    audit_file = tmp_path / "audit.log"
    proc = start_host(
        ["--listen", "tcp://127.0.0.1:0", "--token-file", token_files["control"],
         "--read-token-file", token_files["read"]],
        env={"INTROSPECT_AUDIT_LOG": str(audit_file), "INTROSPECT_HANDSHAKE_TIMEOUT": "0.5"})
    with proc:
        yield proc, tcp_target(proc), audit_file


def audit_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_refusal_is_clear_audited_and_the_agent_keeps_serving(tcp_host):
    proc, target, audit_file = tcp_host

    with pytest.raises(AuthError, match="wrong token"):
        Client(target, token="not-the-token").connect()
    with pytest.raises(AuthError, match="requires a token"):
        Client(target, token=None).connect()  # the client knows it has none: says so
    with RawConnection(target) as raw:  # a client that claims no token anyway
        reply = raw.handshake(token=None)
        assert isinstance(reply, m.ErrorReply) and reply.code == "auth_failed"
        assert "no token" in reply.message
    with RawConnection(target) as raw:  # connects and says nothing
        assert raw.closed_by_peer(timeout=10), "an idle unauthenticated connection stays open"

    with Client(target, token=READ_TOKEN) as reader:
        assert reader.role == "read"
        assert reader.snapshot().tasks.total >= 6  # reading is allowed
        victim = reader.tasks(name="sleeper-0").tasks[0].id
        with pytest.raises(AgentError, match="needs the control role") as refused:
            reader.cancel(victim)
        assert refused.value.code == "forbidden"
        with pytest.raises(AgentError, match="needs the control role"):
            reader.gc_collect()
        with pytest.raises(AgentError, match="needs the control role"):
            reader.request(m.ProfileRequest(duration=1.0), m.ProfileReply)
        with pytest.raises(AgentError, match="read-only"):
            reader.request(m.ConsoleOpen(), m.ConsoleOutput)
        assert reader.snapshot().tasks.total >= 6  # the same connection still works

    # the victim task is untouched; a control client is still served and may cancel it
    with control_client(target) as admin:
        assert admin.role == "control"
        assert admin.tasks(name="sleeper-0").matched == 1
        assert "cancellation requested" in admin.cancel(victim)
        wait_until(lambda: admin.tasks(name="sleeper-0").matched == 0, message="cancelled")

    counts = wait_until(lambda: (c := audit_counts(proc)).get("handshake/expired") and c,
                        message="audit counts")
    assert counts["authenticate/denied"] == 1
    assert counts["authenticate/missing_token"] == 1
    assert counts["cancel_task/forbidden"] == 1
    assert counts["gc_collect/forbidden"] == 1
    assert counts["profile/forbidden"] == 1
    assert counts["console_open/forbidden"] == 1
    assert counts["cancel_task/ok"] == 1

    lines = audit_lines(audit_file)
    by_action = {(ln["action"], ln["outcome"]): ln for ln in lines}
    denied = by_action[("authenticate", "denied")]
    assert denied["peer"].startswith("127.0.0.1:") and denied["client"] == "introspect-cli"
    forbidden = by_action[("cancel_task", "forbidden")]
    assert forbidden["role"] == "read" and forbidden["request"]
    assert by_action[("cancel_task", "ok")]["task_id"] == victim
    assert all(isinstance(ln["time"], float) for ln in lines)
    # the host app never noticed
    before = host_counter(proc)
    wait_until(lambda: host_counter(proc) > before, message="host counter advancing")


def test_the_token_never_crosses_the_wire(tcp_host):
    _proc, target, _audit = tcp_host
    with RawConnection(target) as raw:
        raw.send(m.Hello(versions=[PROTOCOL_VERSION], client_nonce=b"n" * 32))
        challenge = raw.recv()
        assert isinstance(challenge, m.Challenge) and challenge.auth == "token"
        assert CONTROL_TOKEN.encode() not in m.encode(challenge)
    # a proof made for one agent nonce does not open another connection (replay)
    from introspect.protocol import auth

    with RawConnection(target) as first:
        nonce = b"c" * 32
        first.send(m.Hello(versions=[PROTOCOL_VERSION], client_nonce=nonce))
        first_challenge = first.recv()
        stolen = auth.proof(CONTROL_TOKEN, first_challenge.agent_nonce, nonce)
    with RawConnection(target) as replay:
        replay.send(m.Hello(versions=[PROTOCOL_VERSION], client_nonce=nonce))
        replay.recv()
        replay.send(m.Authenticate(proof=stolen))
        reply = replay.recv()
        assert isinstance(reply, m.ErrorReply) and reply.code == "auth_failed"


def test_cli_refusal_is_one_line(tcp_host):
    import subprocess
    import sys

    _proc, target, _audit = tcp_host
    out = subprocess.run([sys.executable, "-m", "introspect", "snapshot", target],
                         capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in __import__("os").environ.items()
                              if not k.startswith("INTROSPECT_TOKEN")})
    assert out.returncode == 4, out
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("introspect: error:"), out.stderr
    assert "requires a token" in lines[0]
