"""Shared pieces for the attach tests: a host program that knows what it created (ground
truth) and answers questions on stdin, raw protocol connections, agent address lookup."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from introspect.client.connection import Client
from introspect.protocol import auth, discovery, framing
from introspect.protocol import messages as m
from introspect.protocol.version import PROTOCOL_VERSION
from tests.support.procs import AgentProcess, wait_until

# The host: N sleeping tasks named sleeper-I, a ticker task advancing `counter` (so a test can
# see the app keeps running), and a stdin command thread reporting agent internals.
HOST_APP = """
import asyncio, json, os, sys, threading
import introspect

SLEEPERS = int(os.environ.get("HOST_SLEEPERS", "5"))
counter = 0

async def ticker():
    global counter
    while True:
        counter += 1
        await asyncio.sleep(0.01)

async def sleeper(i):
    await asyncio.sleep(3600)

def commands():
    for line in sys.stdin:
        cmd = line.strip()
        agent = introspect.get_agent()
        if cmd == "counts":
            counts = {f"{a}/{o}": n for (a, o), n in agent.server.audit.counts.items()}
            print("counts " + json.dumps(counts), flush=True)
        elif cmd == "counter":
            print(f"counter {counter}", flush=True)
        elif cmd == "builds":
            print(f"builds {agent.server.ticker.builds}", flush=True)

async def main():
    threading.Thread(target=commands, daemon=True).start()
    keep = [asyncio.create_task(sleeper(i), name=f"sleeper-{i}") for i in range(SLEEPERS)]
    keep.append(asyncio.create_task(ticker(), name="ticker"))
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""

CONTROL_TOKEN = "control-token-for-tests-0123456789"
READ_TOKEN = "read-token-for-tests-9876543210"


def start_host(agent_args: list[str] | None = None, env: dict[str, str] | None = None,
               source: str = HOST_APP) -> AgentProcess:
    proc = AgentProcess.script(source, agent_args=agent_args, env=env)
    proc.wait_for_line("ready")
    return proc


def ask(proc: AgentProcess, command: str, timeout: float = 10.0) -> str:
    """Send a stdin command to the host and return the payload of its answer line."""
    seen = len(proc.stdout)
    assert proc.proc.stdin is not None
    proc.proc.stdin.write(command + "\n")
    proc.proc.stdin.flush()
    line = wait_until(lambda: next((ln for ln in proc.stdout[seen:]
                                    if ln.startswith(command + " ")), None),
                      timeout, message=f"answer to {command!r}")
    return line[len(command) + 1:].strip()


def audit_counts(proc: AgentProcess) -> dict[str, int]:
    return json.loads(ask(proc, "counts"))


def host_counter(proc: AgentProcess) -> int:
    return int(ask(proc, "counter"))


def find_announcement(pid: int) -> discovery.Announcement | None:
    return next((a for a in discovery.list_agents() if a.pid == pid), None)


def announcement(pid: int) -> discovery.Announcement:
    return wait_until(lambda: find_announcement(pid), message=f"announcement of {pid}")


def tcp_target(proc: AgentProcess) -> str:
    def address() -> str | None:
        if proc.proc.poll() is not None:
            raise AssertionError(f"host exited: {''.join(proc.stderr)[-2000:]}")
        ann = find_announcement(proc.pid)
        return ann.tcp if ann else None

    return wait_until(address, message="the agent's TCP address")


def unix_target(proc: AgentProcess) -> str:
    return str(proc.wait_for_agent())


class RawConnection:
    """Frames by hand, for what a well-behaved client would never send."""

    def __init__(self, target: str, timeout: float = 10.0) -> None:
        if target.startswith("unix:") or target.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(target.removeprefix("unix:"))
        else:
            host, _, port = target.split("://")[-1].rpartition(":")
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout)

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: m.Message) -> None:
        self.send_bytes(framing.pack(m.encode(message)))

    def recv(self) -> m.Message:
        return m.decode_agent_message(framing.recv_frame_blocking(
            self.sock, framing.MAX_FRAME_TO_CLIENT))

    def handshake(self, token: str | None = None) -> m.Message:
        nonce = auth.new_nonce()
        self.send(m.Hello(versions=[PROTOCOL_VERSION], client="raw-test", client_nonce=nonce))
        challenge = self.recv()
        assert isinstance(challenge, m.Challenge), challenge
        proof = auth.proof(token, challenge.agent_nonce, nonce) if token else None
        self.send(m.Authenticate(proof=proof))
        return self.recv()

    def closed_by_peer(self, timeout: float = 10.0) -> bool:
        """True once the agent has closed this connection (anything it sent first is read)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                if self.sock.recv(65536) == b"":
                    return True
            except TimeoutError:
                continue
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def control_client(target: str, **kwargs: Any) -> Client:
    return Client(target, token=CONTROL_TOKEN, **kwargs).connect()


@pytest.fixture
def token_files(tmp_path: Any) -> dict[str, str]:
    control = tmp_path / "control.token"
    control.write_text(CONTROL_TOKEN + "\n")
    read = tmp_path / "read.token"
    read.write_text(READ_TOKEN + "\n")
    return {"control": str(control), "read": str(read)}
