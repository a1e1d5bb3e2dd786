"""Shared pieces for the security tests: a target program that knows its own ground truth
(many tasks, a heartbeat measuring its loop's lag, the agent's connection counters on stdin),
resident memory read from /proc, and client processes that can be stopped with SIGSTOP."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from introspect.protocol import auth, framing
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS
from tests.attach.support import ask  # noqa: F401 - one stdin-command helper for both
from tests.support.procs import AgentProcess, wait_until

CONTROL_TOKEN = "control-token-for-security-tests-0123"
READ_TOKEN = "read-token-for-security-tests-45678"

TARGET_APP = """
import asyncio, json, os, sys, threading, time
import introspect

TASKS = int(os.environ.get("TARGET_TASKS", "50"))
max_lag = 0.0

async def heartbeat():
    # how late the app's loop wakes a 10 ms sleep: its lag as the app feels it
    global max_lag
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.01)
        max_lag = max(max_lag, time.monotonic() - started - 0.01)

async def sleeper(i):
    await asyncio.sleep(3600)

def commands():
    global max_lag
    for line in sys.stdin:
        cmd = line.strip()
        server = introspect.get_agent().server
        if cmd == "counts":
            counts = {f"{a}/{o}": n for (a, o), n in server.audit.counts.items()}
            print("counts " + json.dumps(counts), flush=True)
        elif cmd == "clients":
            print(f"clients {server.client_count}", flush=True)
        elif cmd == "lag":
            print(f"lag {max_lag}", flush=True)
            max_lag = 0.0

async def main():
    threading.Thread(target=commands, daemon=True).start()
    keep = [asyncio.create_task(sleeper(i), name=f"sleeper-{i}") for i in range(TASKS)]
    keep.append(asyncio.create_task(heartbeat(), name="heartbeat"))
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def start_target(agent_args: list[str] | None = None, env: dict[str, str] | None = None,
                 tasks: int = 50) -> AgentProcess:
    proc = AgentProcess.script(TARGET_APP, agent_args=agent_args,
                               env={"TARGET_TASKS": str(tasks), **(env or {})})
    proc.wait_for_line("ready")
    return proc



def rss_bytes(pid: int) -> int:
    """Resident memory of `pid`, from /proc (the ground truth the kernel keeps)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def socket_fds(pid: int) -> int:
    """Open sockets of `pid` (listeners included), from /proc/PID/fd."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:")
        except OSError:
            pass
    return count


# A client process: logs in, then either subscribes and keeps reading, or sends 30 page
# requests and reads only the first reply; it prints "reading" once it has read a first
# answer. The test then stops it with SIGSTOP: a reader that reads nothing any more.
CLIENT = """
import sys
from introspect.client.connection import Client
from introspect.protocol import framing
from introspect.protocol import messages as m

target, mode = sys.argv[1], sys.argv[2]
client = Client(target, timeout=60).connect()
sock = client.sock
if mode == "subscribe":
    sock.sendall(framing.pack(m.encode(m.Subscribe(interval=0.1, top_tasks=1000))))
else:
    for i in range(30):  # requests whose replies will pile up unread
        sock.sendall(framing.pack(m.encode(m.TaskListRequest(id=i + 1, limit=1000))))
framing.recv_frame_blocking(sock, framing.MAX_FRAME_TO_CLIENT)
print("reading", flush=True)
while mode == "subscribe":  # a request client leaves the other replies unread at once
    framing.recv_frame_blocking(sock, framing.MAX_FRAME_TO_CLIENT)
sys.stdin.read()
"""


@contextmanager
def stopped_clients(target: str, mode: str, count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` client processes that logged in, got a first answer, then were SIGSTOP-ed."""
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CLIENT), target, mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if ready else ""
            assert line.strip() == "reading", (line, proc.stderr.read() if proc.poll() else "")
            proc.send_signal(signal.SIGSTOP)
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.send_signal(signal.SIGCONT)
            proc.wait(10)


def tcp_address(proc: AgentProcess) -> tuple[str, int]:
    """(host, port) of the target's TCP listener, from its announcement."""
    from introspect.protocol import discovery

    def address() -> str | None:
        ann = next((a for a in discovery.list_agents() if a.pid == proc.pid), None)
        return ann.tcp if ann else None

    tcp = wait_until(address, message="the agent's TCP address")
    host, _, port = tcp.split("://")[-1].rpartition(":")
    return host.strip("[]"), int(port)


def raw_connect(address: tuple[str, int], source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection from a chosen loopback address: each is a different peer to the
    agent (all of 127.0.0.0/8 is loopback on Linux)."""
    return socket.create_connection(address, timeout=30, source_address=(source, 0))


def raw_login(address: tuple[str, int], token: str | None,
              source: str = "127.0.0.1") -> tuple[m.Message, socket.socket]:
    """The agent's answer to a login with `token` from `source`, and the open socket."""
    sock = raw_connect(address, source)
    nonce = auth.new_nonce()
    hello = m.Hello(versions=list(SUPPORTED_VERSIONS), client="raw-login", client_nonce=nonce)
    sock.sendall(framing.pack(m.encode(hello)))
    challenge = m.decode_agent_message(framing.recv_frame_blocking(sock, 1 << 20))
    if not isinstance(challenge, m.Challenge):
        return challenge, sock
    proof = auth.proof(token, challenge.agent_nonce, nonce) if token else None
    sock.sendall(framing.pack(m.encode(m.Authenticate(proof=proof))))
    return m.decode_agent_message(framing.recv_frame_blocking(sock, 1 << 20)), sock


def write_tokens(directory: Path) -> list[str]:
    """`introspect run` arguments for the control and read tokens, in files of `directory`."""
    control, read = directory / "control.token", directory / "read.token"
    control.write_text(CONTROL_TOKEN)
    read.write_text(READ_TOKEN)
    return ["--token-file", str(control), "--read-token-file", str(read)]
