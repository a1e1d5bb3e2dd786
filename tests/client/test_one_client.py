"""The client stack against a real agent: the sync and the async front fail with the same
one-line errors (dead socket, wrong token, read-only role asking control, unknown task), the
handshake runs without I/O, and both fronts expose the same request table."""

from __future__ import annotations

import asyncio
import inspect
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from introspect.client import AgentError, AsyncClient, Client, Handshake, IncompatibleAgent
from introspect.client.requests import AsyncRequests, SyncRequests
from introspect.client.stream import watch
from introspect.client.target import resolve_target
from introspect.errors import AuthError, ConnectError, UserError
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS
from tests.attach.support import CONTROL_TOKEN, READ_TOKEN, start_host, tcp_target
from tests.support.procs import AgentProcess


@pytest.fixture
def tcp_host(tmp_path: Path) -> Iterator[tuple[AgentProcess, str]]:
    control, read = tmp_path / "control.token", tmp_path / "read.token"
    control.write_text(CONTROL_TOKEN + "\n")
    read.write_text(READ_TOKEN + "\n")
    proc = start_host(["--listen", "tcp://127.0.0.1:0", "--token-file", str(control),
                       "--read-token-file", str(read)])
    with proc:
        yield proc, tcp_target(proc)


def dead_socket(tmp_path: Path) -> str:
    """A socket file nobody listens on (what an agent killed with -9 leaves behind)."""
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return f"unix:{path}"


def both_fronts(target: str, token: str | None,
                action: Callable[[Any], Any]) -> tuple[BaseException, BaseException]:
    """The error `action(client)` raises from the sync front and from the async front."""
    with pytest.raises(UserError) as sync_error:
        with Client(target, token=token) as client:
            action(client)

    async def run_async() -> None:
        async with AsyncClient(target, token=token) as client:
            result = action(client)
            if inspect.isawaitable(result):
                await result

    with pytest.raises(UserError) as async_error:
        asyncio.run(run_async())
    return sync_error.value, async_error.value


def assert_same(errors: tuple[BaseException, BaseException], kind: type[UserError],
                words: str) -> None:
    sync_error, async_error = errors
    assert type(sync_error) is type(async_error) and isinstance(sync_error, kind)
    assert str(sync_error) == str(async_error)
    assert words in str(sync_error) and "\n" not in str(sync_error)


def test_dead_socket_says_the_same_from_both_fronts(tmp_path: Path) -> None:
    errors = both_fronts(dead_socket(tmp_path), None, lambda c: None)
    assert_same(errors, ConnectError, "connection refused (is the agent still running?)")


def test_wrong_token_and_missing_token(tcp_host: tuple[AgentProcess, str]) -> None:
    _, target = tcp_host
    assert_same(both_fronts(target, "not-the-token", lambda c: None), AuthError,
                "(set INTROSPECT_TOKEN or INTROSPECT_TOKEN_FILE)")


def test_read_role_asking_control_and_unknown_task(tcp_host: tuple[AgentProcess, str]) -> None:
    _, target = tcp_host
    forbidden = both_fronts(target, READ_TOKEN, lambda c: c.gc_collect())
    assert_same(forbidden, AgentError, "needs the control role")
    assert isinstance(forbidden[0], AgentError) and forbidden[0].code == "forbidden"
    unknown = both_fronts(target, CONTROL_TOKEN, lambda c: c.task(10**12))
    assert_same(unknown, AgentError, str(10**12))
    with Client(target, token=READ_TOKEN) as client:  # a refusal leaves the link usable
        with pytest.raises(AgentError):
            client.cancel(1)
        assert client.ping() is not None and client.snapshot().tasks.total >= 6


def test_both_fronts_answer_alike(tcp_host: tuple[AgentProcess, str]) -> None:
    _, target = tcp_host
    with Client(target, token=CONTROL_TOKEN) as client:
        sync_page = client.tasks(name="sleeper-", limit=100)

    async def run_async() -> m.TaskPage:
        async with AsyncClient(target, token=CONTROL_TOKEN) as client:
            return await client.tasks(m.TaskListRequest(name="sleeper-", limit=100))

    async_page = asyncio.run(run_async())
    assert sync_page.matched == async_page.matched == 5
    assert {t.id for t in sync_page.tasks} == {t.id for t in async_page.tasks}


def test_watch_ends_on_refusals_and_a_failed_first_connection(
        tcp_host: tuple[AgentProcess, str], tmp_path: Path) -> None:
    _, target = tcp_host

    async def first_event(address: str, token: str | None) -> object:
        async for event in watch(address, token=token, retry_first=False, interval=0.2):
            return event
        return None

    with pytest.raises(AuthError, match="wrong token"):
        asyncio.run(first_event(target, "not-the-token"))
    with pytest.raises(ConnectError, match="connection refused"):
        asyncio.run(first_event(dead_socket(tmp_path), None))


def test_the_handshake_without_io() -> None:
    target = resolve_target("127.0.0.1:1")
    handshake = Handshake(target, None, "test")
    hello = handshake.hello()
    assert hello.client == "test" and hello.versions == list(SUPPORTED_VERSIONS)
    challenge = m.Challenge(version=SUPPORTED_VERSIONS[-1], agent_nonce=b"n" * 16, auth="none")
    assert handshake.answer(challenge).proof is None
    with pytest.raises(AuthError, match="requires a token"):
        handshake.answer(m.Challenge(version=SUPPORTED_VERSIONS[-1], agent_nonce=b"n" * 16,
                                     auth="token"))
    with pytest.raises(IncompatibleAgent, match="incompatible agent"):
        handshake.answer(m.Challenge(version=10**6, agent_nonce=b"n", auth="none"))
    with_token = Handshake(target, "secret", "test")
    proof = with_token.answer(m.Challenge(version=SUPPORTED_VERSIONS[-1],
                                          agent_nonce=b"n" * 16, auth="token")).proof
    assert proof and b"secret" not in proof
    assert handshake.welcome(m.Welcome(role="read", pid=42, version=1)) == ("read", 42)
    with pytest.raises(AuthError):
        handshake.welcome(m.ErrorReply(code="auth_failed", message="wrong token"))


def test_both_fronts_run_one_handshake_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` (async) and `run_blocking` (sync) send the same messages in the same order and
    turn a close before the Challenge into the same hint."""
    monkeypatch.delenv("INTROSPECT_TLS_CLIENT_CERT", raising=False)
    agent = {m.Hello: m.Challenge(version=SUPPORTED_VERSIONS[-1], agent_nonce=b"n" * 16,
                                  auth="none"),
             m.Authenticate: m.Welcome(role="read", pid=42, version=1)}

    def scripted(sent: list[type]) -> Callable[[m.Message], m.Message]:
        def exchange(message: m.Message) -> m.Message:
            sent.append(type(message))
            return agent[type(message)]
        return exchange

    def run_async(handshake: Handshake, exchange: Callable[[m.Message], m.Message]) -> Any:
        async def exchange_async(message: m.Message) -> m.Message:
            return exchange(message)
        return asyncio.run(handshake.run(exchange_async))

    def closes(message: m.Message) -> m.Message:
        raise ConnectError("connection closed")

    for run in (Handshake.run_blocking, run_async):
        sent: list[type] = []
        assert run(Handshake(resolve_target("127.0.0.1:1"), None, "test"),
                   scripted(sent)) == ("read", 42)
        assert sent == [m.Hello, m.Authenticate]
        with pytest.raises(ConnectError, match="requires a client certificate"):
            run(Handshake(resolve_target("tls://127.0.0.1:1"), None, "test"), closes)


def test_the_fronts_share_one_request_table() -> None:
    names = {"snapshot", "tasks", "task", "thread_stacks", "queues", "dump", "cancel",
             "gc_collect", "exact_accounting", "exact_report", "stuck", "profile", "ping"}
    for name in names:
        sync, aio = getattr(SyncRequests, name), getattr(AsyncRequests, name)
        assert inspect.iscoroutinefunction(aio) and not inspect.iscoroutinefunction(sync)
        assert list(inspect.signature(sync).parameters) == \
            list(inspect.signature(aio).parameters), name


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1, and another CA (openssl CLI)."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days",
                "2", "-subj", f"/CN={ca}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return d


def test_tls_failures_say_the_same_from_both_fronts(pki: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "control.token"
    token.write_text(CONTROL_TOKEN + "\n")
    env = {"INTROSPECT_TLS_CERT": str(pki / "server.pem"),
           "INTROSPECT_TLS_KEY": str(pki / "server.key"),
           "INTROSPECT_TLS_CLIENT_CA": str(pki / "ca.pem")}
    with start_host(["--listen", "tcp://127.0.0.1:0", "--token-file", str(token)],
                    env=env) as proc:
        target = tcp_target(proc)
        monkeypatch.delenv("INTROSPECT_TLS_CLIENT_CERT", raising=False)
        monkeypatch.setenv("INTROSPECT_TLS_CA", str(pki / "other-ca.pem"))
        assert_same(both_fronts(target, CONTROL_TOKEN, lambda c: None), ConnectError,
                    "not accepted")
        monkeypatch.setenv("INTROSPECT_TLS_CA", str(pki / "ca.pem"))
        assert_same(both_fronts(target, CONTROL_TOKEN, lambda c: None), ConnectError,
                    "requires a client certificate")
