"""Where the agent listens: the per-user Unix socket (0600), TCP only with a token (or
`insecure_no_auth` on loopback), TLS with the standard `ssl` module, and listen addresses
inherited from an agent-enabled ancestor left to that ancestor."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introspect.errors import UserError
from introspect.protocol import discovery

log = logging.getLogger("introspect.agent")
BACKLOG = 64
# Anyone who can reach the port may guess: a TCP token must not be guessable (a 1-character
# token was accepted on 0.0.0.0). `openssl rand -hex 32` gives 64.
MIN_TCP_TOKEN_CHARS = 16


@dataclass
class Listener:
    sock: socket.socket
    kind: str  # "unix" | "tcp"
    address: str
    path: Path | None = None
    ssl_context: ssl.SSLContext | None = None  # TLS is started per connection

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None


def bind_all(config: Any, runtime_dir: Path) -> list[Listener]:
    """Every configured listener bound, or none (a failure closes what was already bound and
    raises UserError)."""
    specs = _own_specs(list(config.listen) or ["unix:"], runtime_dir)
    listeners: list[Listener] = []
    ssl_context: ssl.SSLContext | None = None
    try:
        for spec in specs:
            if spec.startswith("unix:"):
                listeners.append(bind_unix(spec[len("unix:"):], runtime_dir))
            else:
                hostport = spec[len("tcp://"):]
                host, port = _host_and_port(hostport)
                check_tcp_allowed(config, host, hostport)
                if config.tls_cert and ssl_context is None:
                    ssl_context = server_ssl_context(config)
                listeners.append(bind_tcp(host, port, ssl_context))
    except BaseException:
        close_all(listeners)
        raise
    return listeners


def close_all(listeners: list[Listener]) -> None:
    """Close the sockets and remove the socket files."""
    for lst in listeners:
        with contextlib.suppress(OSError):
            lst.sock.close()
        if lst.path is not None:
            with contextlib.suppress(FileNotFoundError):
                lst.path.unlink()


def bind_unix(path_text: str, runtime_dir: Path) -> Listener:
    path = Path(path_text) if path_text else discovery.socket_path(os.getpid(), runtime_dir)
    if path.is_socket():
        if _socket_answers(path):
            raise UserError(f"cannot listen on unix:{path}: another process is listening there")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left behind by a process that died (kill -9)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket file is born 0600: no window for others
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on unix:{path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return Listener(sock, "unix", f"unix:{path}", path)


def _host_and_port(hostport: str) -> tuple[str, int]:
    host, _, port_text = hostport.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port_text)
    except ValueError:
        raise UserError(f"listen address tcp://{hostport}: the port must be a number") from None


def bind_tcp(host: str, port: int, ssl_context: ssl.SSLContext | None) -> Listener:
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on tcp://{hostport}: {exc.strerror}") from None
    sock.listen(BACKLOG)
    sock.setblocking(False)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    scheme = "tls" if ssl_context is not None else "tcp"
    return Listener(sock, "tcp", f"{scheme}://{shown}:{real_port}", ssl_context=ssl_context)


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _own_specs(specs: list[str], directory: Path) -> list[str]:
    """Listen addresses inherited from an agent-enabled ancestor (a fork child, a spawned
    multiprocessing worker, a gunicorn worker all inherit INTROSPECT_LISTEN) belong to that
    ancestor: the child takes the default per-user socket instead of stealing or failing."""
    fixed = [spec for spec in specs if _is_fixed(spec)]
    if not fixed:
        return specs
    held = _addresses_of_ancestors(directory)
    own = [spec for spec in specs if not (_is_fixed(spec) and _normalise(spec) in held)]
    if len(own) != len(specs):
        log.info("introspect: %s held by a parent agent; this process listens on its own "
                 "per-user socket", ", ".join(s for s in specs if s not in own))
        if not any(spec.startswith("unix:") for spec in own):
            own.insert(0, "unix:")
    return own


def _is_fixed(spec: str) -> bool:
    if spec.startswith("unix:"):
        return bool(spec[len("unix:"):])
    return not spec.endswith(":0")


def _normalise(spec: str) -> str:
    if spec.startswith("unix:"):
        return "unix:" + os.path.abspath(spec[len("unix:"):])
    return spec.replace("tls://", "tcp://").replace("localhost", "127.0.0.1")


def _addresses_of_ancestors(directory: Path) -> set[str]:
    try:
        import psutil

        ancestors = {p.pid for p in psutil.Process().parents()}
    except Exception:
        ancestors = {os.getppid()}
    held: set[str] = set()
    for ann in discovery.list_agents(directory, clean=False):
        if ann.pid in ancestors:
            held.update(_normalise(a) for a in ann.listen)
    return held


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tcp_allowed(config: Any, host: str, hostport: str) -> None:
    """TCP needs a token of at least MIN_TCP_TOKEN_CHARS; `insecure_no_auth` is accepted on
    loopback only."""
    if config.token or config.read_token:
        for variable, token in (("INTROSPECT_TOKEN", config.token),
                                ("INTROSPECT_READ_TOKEN", config.read_token)):
            if token and len(token) < MIN_TCP_TOKEN_CHARS:
                raise UserError(f"refusing to listen on tcp://{hostport}: {variable} has "
                                f"{len(token)} characters, a TCP token needs at least "
                                f"{MIN_TCP_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)")
        return
    if not config.insecure_no_auth:
        raise UserError(f"refusing to listen on tcp://{hostport} without a token: set "
                        "INTROSPECT_TOKEN (or --insecure-no-auth, loopback only)")
    if not _is_loopback(host):
        raise UserError(f"--insecure-no-auth is allowed on loopback addresses only, not {host}")


def server_ssl_context(config: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if not config.tls_key and not config.tls_cert:
        raise UserError("TLS configuration: INTROSPECT_TLS_CERT is required")
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_client_ca:
            context.load_verify_locations(config.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"TLS configuration: {exc}") from None
    return context
