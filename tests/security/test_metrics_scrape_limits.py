"""`/metrics` against hostile clients: half-sent requests can't lock scrapes out (they are
dropped after the header timeout, and a newcomer takes the slot of the oldest one still
sending its head), and a Host that names another site (DNS rebinding) is refused."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from tests.metrics.support import families, metrics_url, scrape
from tests.support.procs import AgentProcess, wait_until

APP = """
import asyncio
async def main():
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""
HALF_SENT = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # never finished


def _target(env: dict[str, str] | None = None) -> tuple[AgentProcess, tuple[str, int]]:
    proc = AgentProcess.script(APP, agent_args=["--metrics-port", "0"], env=env)
    proc.wait_for_line("ready")
    url = urlsplit(metrics_url(proc))
    assert url.hostname is not None and url.port is not None
    return proc, (url.hostname, url.port)


def _raw_get(address: tuple[str, int], head: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_half_sent_requests_do_not_lock_scrapes_out_and_are_dropped():
    proc, address = _target()
    with proc:
        held: list[socket.socket] = []
        try:
            # 16 hosts with one half-sent request each (every loop slot), and one host with
            # 16 (over its share): 20 of 24 scrapes failed like this before
            sources = [f"127.0.2.{i}" for i in range(1, 17)] + ["127.0.0.1"] * 16
            for source in sources:
                sock = socket.create_connection(address, timeout=10, source_address=(source, 0))
                sock.sendall(HALF_SENT)
                held.append(sock)
            url = f"http://{address[0]}:{address[1]}/metrics"
            for _ in range(24):
                body, _ = scrape(url, timeout=5)
                assert "introspect_agent_info" in families(body) or "introspect_" in body
            # and every half-sent request is dropped once its head is overdue
            wait_until(lambda: all(_closed_by_peer(s) for s in held), timeout=30,
                       message="the half-sent requests closed by the agent")
        finally:
            for sock in held:
                sock.close()


def test_host_header_must_name_this_server():
    proc, address = _target(env={"INTROSPECT_METRICS_HOSTS": "metrics.internal"})
    with proc:
        port = address[1]

        def status(host: str | None) -> bytes:
            head = b"GET /metrics HTTP/1.1\r\n"
            if host is not None:
                head += f"Host: {host}\r\n".encode()
            reply = _raw_get(address, head + b"Connection: close\r\n\r\n")
            return reply.split(b"\r\n", 1)[0]

        for accepted in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost",
                         f"metrics.internal:{port}", f"METRICS.internal.:{port}",
                         f"[::1]:{port}", f"{socket.gethostname()}:{port}", None):
            assert status(accepted) == b"HTTP/1.1 200 OK", accepted
        for rebinding in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.evil.example:{port}",
                          "metrics.internal.evil.example", "[not-an-ip]"):
            assert status(rebinding) == b"HTTP/1.1 403 Forbidden", rebinding
