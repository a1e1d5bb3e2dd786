"""How fast does /metrics answer while the app's loop is saturated, and while it is blocked?

    .venv/bin/python benchmarks/scrape_under_load.py [--rounds 2] [--scrapes 6]

Four ways to serve the same /metrics body (the agent's registry), each in a fresh child process,
runs alternating (option by option, round after round):

- thread:     prometheus_client's own `start_http_server` (a thread per request)
- agent-loop: an asyncio server on a private loop in its own thread (like the agent's server)
- app-loop:   our server on the app's loop only (the takeover thread disabled)
- hybrid:     what ships: the app's loop serves, a thread takes over when the loop is stuck

Four situations in the child: `saturated` (workload A: 200 producer/consumer pairs over
Queue(maxsize=1)), `saturated-io` (100 socket pairs ping-ponging 1-byte messages through
asyncio streams: every step is an epoll round), `blocked-sleep` (the loop thread in
time.sleep), `blocked-spin` (the loop thread in a pure-Python loop). The parent scrapes from
another process; a scrape with no answer within the timeout counts as unanswered.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPTIONS = ("thread", "agent-loop", "app-loop", "hybrid")
SITUATIONS = ("saturated", "saturated-io", "blocked-sleep", "blocked-spin")
TIMEOUT = 3.0

CHILD = r"""
import asyncio, sys, threading, time
option, situation = sys.argv[1], sys.argv[2]
sys.path.insert(0, {repo!r})
import introspect
from introspect.metrics import scrape_server
from benchmarks.workloads import _consumer, _producer

async def agent_loop_server(endpoint):
    async def handle(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            body, ctype = endpoint.render("", "agent-loop")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode()
                         + b"\r\nContent-Length: " + str(len(body)).encode()
                         + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        finally:
            writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1]

def start_agent_loop(endpoint):
    loop = asyncio.new_event_loop()
    port = []
    ready = threading.Event()
    def run():
        port.append(loop.run_until_complete(agent_loop_server(endpoint)))
        ready.set()
        loop.run_forever()
    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    return port[0]

async def start_ping_pong():
    import socket
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_connection(sock=a)
    rb, wb = await asyncio.open_connection(sock=b)
    async def echo(reader, writer):
        while True:
            data = await reader.read(1)
            writer.write(data)
    asyncio.ensure_future(echo(rb, wb))
    asyncio.ensure_future(echo(ra, wa))
    wa.write(b"x")

async def main():
    if option == "app-loop":
        scrape_server.TAKEOVER_AFTER = scrape_server.PENDING_LIMIT = float("inf")
    if option in ("app-loop", "hybrid"):
        agent = introspect.start(metrics_port=0)
        port = agent.extensions["metrics"].port
    else:
        agent = introspect.start()
        endpoint = agent.extensions["metrics"]
        if option == "thread":
            import prometheus_client
            server, _ = prometheus_client.start_http_server(0, addr="127.0.0.1")
            port = server.server_address[1]
        else:
            port = start_agent_loop(endpoint)
    await asyncio.sleep(0.3)  # the agent's beat hands the socket to this loop
    if situation == "saturated":
        for _ in range(200):
            q = asyncio.Queue(maxsize=1)
            asyncio.ensure_future(_consumer(q, [0])); asyncio.ensure_future(_producer(q, [False]))
        await asyncio.sleep(0.2)
    if situation == "saturated-io":
        for _ in range(100):
            await start_ping_pong()
        await asyncio.sleep(0.2)
    print(port, flush=True)
    if situation == "blocked-sleep":
        time.sleep(3600)
    elif situation == "blocked-spin":
        while True:
            pass
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def scrape(url: str) -> float | None:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            response.read()
    except OSError:
        return None
    return time.perf_counter() - started


def run_one(option: str, situation: str, scrapes: int) -> list[float | None]:
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO)), option,
                              situation], stdout=subprocess.PIPE, text=True,
                             stderr=subprocess.DEVNULL)
    try:
        port = int(child.stdout.readline())
        time.sleep(0.5)  # let the blocked situations really block
        url = f"http://127.0.0.1:{port}/metrics"
        out = []
        for _ in range(scrapes):
            out.append(scrape(url))
            time.sleep(0.2)
        return out
    finally:
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scrapes", type=int, default=6)
    parser.add_argument("--situations", nargs="+", default=list(SITUATIONS))
    args = parser.parse_args()
    results: dict[tuple[str, str], list[float | None]] = {}
    for _round in range(args.rounds):
        for situation in args.situations:
            for option in OPTIONS:  # alternating: every option once per round and situation
                results.setdefault((option, situation), []).extend(
                    run_one(option, situation, args.scrapes))
    print(f"| option | situation | answered (≤ {TIMEOUT:g} s) | p50 ms | max ms |")
    print("|---|---|---|---|---|")
    for situation in args.situations:
        for option in OPTIONS:
            values = results[(option, situation)]
            ok = [v for v in values if v is not None]
            p50 = f"{statistics.median(ok) * 1000:.1f}" if ok else "—"
            worst = f"{max(ok) * 1000:.1f}" if ok else "—"
            print(f"| {option} | {situation} | {len(ok)}/{len(values)} | {p50} | {worst} |")


if __name__ == "__main__":
    main()
