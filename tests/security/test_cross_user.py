"""Local trust is by uid: on the Unix socket, a peer of another (unprivileged) user is refused
whatever the token setting, even when the socket file's mode lets it connect; an explicitly
allow-listed uid is let in as the owner is. The other user is real (useradd) and the client
runs as that user (a forked child that drops to its uid)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from introspect.client.connection import Client
from introspect.errors import UserError
from tests.security.support import CONTROL_TOKEN, ask, start_target
from tests.support.procs import AgentProcess


def connect_as(user: pwd.struct_passwd, socket_path: Path, token: str | None) -> str:
    """Connect as `user` in a forked child; 'control'/'read' (the role) or the error."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the other user, connect, report, leave
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
            with Client(f"unix:{socket_path}", token=token, timeout=10) as client:
                client.snapshot()
                outcome = client.role or "?"
        except UserError as exc:
            outcome = f"refused: {exc}"
        except BaseException as exc:
            outcome = f"error: {exc!r}"
        os.write(write_end, outcome.encode()[:4000])
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


@contextmanager
def target_on_open_socket(env: dict[str, str]) -> Iterator[tuple[AgentProcess, Path]]:
    """A target listening in a directory others may enter, its socket made 0666 after start:
    the file mode no longer stops the other user, so the agent's own check is what's tested."""
    directory = Path(tempfile.mkdtemp(prefix="introspect-xuser-"))
    try:
        directory.chmod(0o755)
        path = directory / "agent.sock"
        with start_target(["--listen", f"unix:{path}"], env=env) as proc:
            path.chmod(0o666)
            yield proc, path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("token", [None, CONTROL_TOKEN], ids=["no-token", "token"])
def test_another_uid_is_refused_whatever_the_token_setting(other_user, token):
    env = {"INTROSPECT_TOKEN": token} if token else {}
    with target_on_open_socket(env) as (proc, path):
        outcome = connect_as(other_user, path, token)
        assert outcome.startswith("refused:"), outcome  # before the fix: "control"
        assert f"uid {other_user.uid}" in outcome
        assert '"connect/denied_uid"' in ask(proc, "counts")
        with Client(f"unix:{path}") as owner:  # the owner (and root) keep control
            assert owner.role == "control"


def test_an_allow_listed_uid_is_let_in(other_user):
    with target_on_open_socket({"INTROSPECT_ALLOW_UIDS": str(other_user.uid)}) as (_, path):
        assert connect_as(other_user, path, None) == "control"
