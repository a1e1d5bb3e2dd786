"""The per-user runtime dir when XDG_RUNTIME_DIR is unset: `introspect-UID` in the shared temp
dir, which another user can create first. The host app must still start (with its agent in a
private dir, said in one line), nothing outside is chmod-ed through a planted symlink, and a
client never hands its login proof to an impostor's socket."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS
from tests.support.procs import AgentProcess, wait_until

TOKEN = "a-control-token-long-enough-0123456789"
APP = """
import time, introspect
introspect.start()
print("app ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """pytest's tmp_path is private to root; the other user must reach this one."""
    path = Path(tempfile.mkdtemp(prefix="introspect-test-shared-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def shared_tmp(tmp_path: Path, sticky: bool = True) -> Path:
    """A stand-in for /tmp that the other user can write to."""
    tmp = tmp_path / "shared-tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777 if sticky else 0o777)
    return tmp


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    # empty values count as unset: the runtime dir is then TMPDIR/introspect-UID
    return {"INTROSPECT_RUNTIME_DIR": "", "XDG_RUNTIME_DIR": "", "TMPDIR": str(tmp),
            "INTROSPECT_TOKEN": "", "INTROSPECT_TOKEN_FILE": "", **extra}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "introspect", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})


def start_app(env: dict[str, str]) -> AgentProcess:
    proc = AgentProcess.script(APP, env=env)
    wait_until(lambda: proc.proc.poll() is not None or "app ready\n" in proc.stdout,
               message="the app to start or exit")
    assert proc.proc.poll() is None, f"the host app failed to start: {''.join(proc.stderr)}"
    return proc


def listed_by_ps(env: dict[str, str], pid: int) -> bool:
    out = cli(env, "ps", "--json")
    return out.returncode == 0 and pid in [a["pid"] for a in json.loads(out.stdout)]


def test_a_dir_made_first_by_another_user_does_not_stop_the_app(tmp_path, as_other):
    tmp = shared_tmp(tmp_path)
    squatted = tmp / f"introspect-{os.getuid()}"

    def squat(say):
        os.mkdir(squatted, 0o777)
        os.chmod(squatted, 0o777)
        say("made")

    as_other(squat).wait_for("made")
    env = env_for(tmp)
    with start_app(env) as proc:
        notes = [ln for ln in proc.stderr if "introspect" in ln]
        assert len(notes) == 1 and "not usable" in notes[0] and "private dir" in notes[0], notes
        # the agent is still found by PID and by `ps`, in its private dir
        wait_until(lambda: listed_by_ps(env, proc.pid), message="the agent listed by ps")
        out = cli(env, "snapshot", str(proc.pid), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["node"]["pid"] == proc.pid
    assert os.listdir(squatted) == []  # nothing of ours was put in the other user's dir


def test_a_planted_symlink_is_not_followed(tmp_path, as_other):
    tmp = shared_tmp(tmp_path, sticky=False)  # no sticky bit: as on a host without it
    victim = tmp_path / "victim"  # a directory of ours, readable by all
    victim.mkdir()
    os.chmod(victim, 0o755)
    link = tmp / f"introspect-{os.getuid()}"

    def plant(say):
        os.symlink(victim, link)
        say("planted")

    as_other(plant).wait_for("planted")
    with start_app(env_for(tmp)) as proc:
        assert any("not usable" in ln for ln in proc.stderr), proc.stderr
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o755  # not chmod-ed through the link
    assert os.listdir(victim) == []


def _impostor(path: Path):
    """Listens at `path` as the other user and reports what a client sends it."""
    challenge = framing.pack(m.encode(m.Challenge(version=SUPPORTED_VERSIONS[-1], auth="token",
                                                  agent_nonce=bytes(16))))

    def body(say):
        os.makedirs(path.parent, mode=0o777, exist_ok=True)
        os.chmod(path.parent, 0o777)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        os.chmod(path, 0o777)
        server.listen(8)
        say("listening")
        while True:
            conn, _ = server.accept()
            say("connected")
            conn.settimeout(10)
            received = b""
            try:
                received = conn.recv(65536)  # the Hello
                if received:
                    conn.sendall(challenge)
                    received += conn.recv(65536)  # an Authenticate with the proof, if given
            except OSError:
                pass
            say("proof received" if b"authenticate" in received
                else f"no proof ({len(received)} bytes)")
            conn.close()
    return body


def test_a_client_never_answers_an_impostor(tmp_path, as_other):
    tmp = shared_tmp(tmp_path)
    env = env_for(tmp, INTROSPECT_TOKEN=TOKEN)
    squatted = tmp / f"introspect-{os.getuid()}"
    as_other(lambda say: (os.mkdir(squatted, 0o777), say("made"))).wait_for("made")
    with start_app(env) as proc:
        impostor = as_other(_impostor(squatted / f"agent-{proc.pid}.sock"))
        impostor.wait_for("listening")
        # by PID: the impostor's dir is skipped, the real agent (in its private dir) answers
        out = cli(env, "snapshot", str(proc.pid), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["node"]["pid"] == proc.pid
        assert "connected" not in impostor.lines
        # by path: connected, but the peer's uid is checked before any challenge is answered
        out = cli(env, "snapshot", str(squatted / f"agent-{proc.pid}.sock"))
        assert out.returncode != 0
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "served by uid" in lines[0], out.stderr
        assert impostor.wait_for("no proof") == "no proof (0 bytes)"
        assert "proof received" not in impostor.lines
