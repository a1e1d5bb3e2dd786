"""A forked child closes the client sockets it inherited from the parent's agent: a client of
the parent sees EOF when the parent dies, instead of hanging on a socket the child holds."""

from __future__ import annotations

import os
import signal

from introspect.protocol import framing
from introspect.protocol import messages as m
from tests.security.support import ask
from tests.support.procs import AgentProcess

FORK_ON_COMMAND = """
import asyncio, os, sys, threading, time
import introspect

def commands():
    for line in sys.stdin:
        if line.strip() == "fork":
            pid = os.fork()
            if pid == 0:
                time.sleep(120)
                os._exit(0)
            print(f"fork {pid}", flush=True)

async def main():
    threading.Thread(target=commands, daemon=True).start()
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_forked_child_closes_inherited_client_sockets_and_the_client_sees_eof():
    with AgentProcess.script(FORK_ON_COMMAND) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        client = proc.client().connect()
        child = 0
        try:
            client.sock.sendall(framing.pack(m.encode(m.Ping(id=1))))
            assert framing.recv_frame_blocking(client.sock, 1 << 20)  # logged in and served
            child = int(ask(proc, "fork"))
            os.kill(proc.pid, signal.SIGKILL)
            client.sock.settimeout(20)  # the child sleeps 120 s: a hang means it holds it
            try:
                assert client.sock.recv(1) == b""  # EOF: no one else holds the socket
            except ConnectionResetError:
                pass
        finally:
            client.close()
            if child:
                os.kill(child, signal.SIGKILL)

