"""Transports: the per-user Unix socket (0600 in a 0700 dir), TCP that refuses to start without
a token (or off loopback with --insecure-no-auth), and TLS with server and client certificates
from a throwaway CA made here with the openssl CLI."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from introspect.client.connection import Client
from introspect.errors import ConnectError
from introspect.protocol import discovery
from tests.attach.support import (
    CONTROL_TOKEN,
    RawConnection,
    audit_counts,
    start_host,
    tcp_target,
    token_files,  # noqa: F401 - fixture
)
from tests.support.procs import AgentProcess, wait_until


def introspect_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "introspect", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def assert_one_line_error(out: subprocess.CompletedProcess, needle: str) -> None:
    assert out.returncode != 0, out
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("introspect: error:") and needle in lines[0], lines[0]
    assert "never printed" not in out.stdout  # the program's own code did not run


def test_unix_socket_is_private_to_the_user(runtime_dir: str):
    with start_host() as proc:
        sock = proc.wait_for_agent()
        assert stat.S_IMODE(os.stat(runtime_dir).st_mode) == 0o700
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE(discovery.announcement_path(proc.pid).stat().st_mode) == 0o600
        # another user can't even reach it (CI runs as root: a forked child drops to nobody)
        assert _connect_as_nobody(sock) == "denied"
        with proc.client() as client:  # the owner is trusted without a token
            assert client.role == "control"


def _connect_as_nobody(path: Path) -> str:
    pid = os.fork()
    if pid == 0:  # the child only does syscalls and leaves with os._exit
        code = 30
        try:
            os.setgid(65534)
            os.setuid(65534)
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(str(path))
            code = 10
        except PermissionError:
            code = 20
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {10: "connected", 20: "denied"}.get(os.waitstatus_to_exitcode(status), "error")


def test_runtime_dir_of_another_user_is_not_used(tmp_path: Path):
    """The app still runs; its agent goes to a private dir and says so in one line."""
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    out = introspect_cli("run", "--", sys.executable, "-c", "print('the app ran')",
                         env={"INTROSPECT_RUNTIME_DIR": str(foreign)})
    assert out.returncode == 0 and out.stdout == "the app ran\n", out
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "belongs to uid 65534" in lines[0] and "private dir" in lines[0]
    assert os.listdir(foreign) == []


@pytest.mark.parametrize("agent_args,needle", [
    (["--listen", "tcp://127.0.0.1:0"], "without a token"),
    (["--listen", "tcp://0.0.0.0:0", "--insecure-no-auth"], "loopback addresses only"),
])
def test_tcp_refuses_to_start_unsafely(agent_args: list[str], needle: str):
    out = introspect_cli("run", *agent_args, "--", sys.executable, "-c",
                         "print('never printed')")
    assert_one_line_error(out, needle)


def test_insecure_no_auth_on_loopback_serves_without_token():
    with start_host(["--listen", "tcp://127.0.0.1:0", "--insecure-no-auth"]) as proc:
        target = tcp_target(proc)
        with Client(target, token=None) as client:
            assert client.snapshot().node.pid == proc.pid


# --- TLS ------------------------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)


def _make_leaf(directory: Path, name: str, ca: str, ext: str) -> None:
    (directory / f"{name}.ext").write_text(ext + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
             cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _make_leaf(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    _make_leaf(d, "client", "ca", "extendedKeyUsage=clientAuth")
    return d


def _tls_host(pki: Path, token_file: str, client_ca: bool) -> AgentProcess:
    env = {"INTROSPECT_TLS_CERT": str(pki / "server.pem"),
           "INTROSPECT_TLS_KEY": str(pki / "server.key")}
    if client_ca:
        env["INTROSPECT_TLS_CLIENT_CA"] = str(pki / "ca.pem")
    return start_host(["--listen", "tcp://127.0.0.1:0", "--token-file", token_file], env=env)


def test_tls_server_certificate(pki: Path, token_files: dict[str, str],  # noqa: F811
                                monkeypatch: pytest.MonkeyPatch):
    with _tls_host(pki, token_files["control"], client_ca=False) as proc:
        target = tcp_target(proc)
        assert target.startswith("tls://127.0.0.1:")
        monkeypatch.setenv("INTROSPECT_TLS_CA", str(pki / "ca.pem"))
        with Client(target, token=CONTROL_TOKEN) as client:
            assert client.snapshot().node.pid == proc.pid
        monkeypatch.setenv("INTROSPECT_TLS_CA", str(pki / "other-ca.pem"))
        with pytest.raises(ConnectError, match=r"certificate was not accepted.*INTROSPECT_TLS_CA"):
            Client(target, token=CONTROL_TOKEN).connect()
        out = introspect_cli("snapshot", target, env={"INTROSPECT_TLS_CA":
                                                     str(pki / "other-ca.pem")})
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode == 3 and len(lines) == 1, out.stderr
        assert "TLS handshake" in lines[0] and "certificate" in lines[0]
        # a plaintext client on the TLS port is turned away, and audited
        with RawConnection(target) as raw:
            raw.send_bytes(b"\x00\x00\x00\x05hello")
            assert raw.closed_by_peer()
        wait_until(lambda: audit_counts(proc).get("tls/denied", 0) >= 1, message="tls audit")


def test_tls_client_certificates(pki: Path, token_files: dict[str, str],  # noqa: F811
                                 monkeypatch: pytest.MonkeyPatch):
    with _tls_host(pki, token_files["control"], client_ca=True) as proc:
        target = tcp_target(proc)
        monkeypatch.setenv("INTROSPECT_TLS_CA", str(pki / "ca.pem"))
        with pytest.raises(ConnectError, match="requires a client certificate"):
            Client(target, token=CONTROL_TOKEN).connect()
        monkeypatch.setenv("INTROSPECT_TLS_CLIENT_CERT", str(pki / "client.pem"))
        monkeypatch.setenv("INTROSPECT_TLS_CLIENT_KEY", str(pki / "client.key"))
        with Client(target, token=CONTROL_TOKEN) as client:
            assert client.snapshot().node.pid == proc.pid
        wait_until(lambda: audit_counts(proc).get("tls/denied", 0) >= 1, message="tls audit")
