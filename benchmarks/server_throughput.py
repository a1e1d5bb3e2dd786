"""Requests per second of real multi-worker servers with and without the agent (issue 14).

    .venv/bin/python benchmarks/server_throughput.py --rounds 4 --duration 3

Configurations: uvicorn with 1 and 3 workers, gunicorn with 3 UvicornWorkers, serving a FastAPI
app (one `async def` endpoint). Each round starts the server plain, then under
`introspect run --metrics-port 0` (metrics on, every worker serving its own port), alternating
(the order flips every round), and drives it with keep-alive HTTP/1.1 connections from this
process for `--duration` seconds after a warm-up. Reported: the median ratio agent/plain of
requests per second, with every run's raw value. On the 2-core VM the load generator shares the
cores with the server, so absolute rates are low and noisy; the ratio is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
APP = '''
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict:
    return {"ok": True}
'''
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_argv(name: str, port: int) -> list[str]:
    bind = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if name == "uvicorn-1":
        return [str(BIN / "uvicorn"), "app:app", *bind]
    if name == "uvicorn-3":
        return [str(BIN / "uvicorn"), "app:app", *bind, "--workers", "3"]
    return [str(BIN / "gunicorn"), "-k", "uvicorn.workers.UvicornWorker", "-w", "3",
            "-b", f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning",
            "app:app"]


async def _client(port: int, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


async def _load(port: int, seconds: float, connections: int) -> float:
    counts = [0]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_client(port, deadline, counts) for _ in range(connections)))
    return counts[0] / seconds


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(REQUEST)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready")


def one_run(name: str, with_agent: bool, app_dir: Path, seconds: float,
            connections: int) -> float:
    port = free_port()
    argv = server_argv(name, port)
    if with_agent:
        argv = [str(BIN / "introspect"), "run", "--metrics-port", "0", "--", *argv]
    env = {**os.environ, "INTROSPECT_RUNTIME_DIR": str(app_dir / "rt")}
    proc = subprocess.Popen(argv, cwd=app_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_ready(port, proc)
        asyncio.run(_load(port, 1.0, connections))  # warm-up: every worker up and imported
        return asyncio.run(_load(port, seconds, connections))
    finally:
        stop_server(proc)


def stop_server(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM to the server's process group (workers included), SIGKILL after `grace`."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--configs", default="uvicorn-1,uvicorn-3,gunicorn-3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="introspect-bench-") as tmp:
        app_dir = Path(tmp)
        (app_dir / "app.py").write_text(APP)
        (app_dir / "rt").mkdir(mode=0o700)
        print("| server | plain req/s (each run) | agent req/s (each run) | median ratio |")
        print("|---|---|---|---|")
        for name in args.configs.split(","):
            plain: list[float] = []
            agent: list[float] = []
            ratios: list[float] = []
            for round_no in range(args.rounds):
                order = (False, True) if round_no % 2 == 0 else (True, False)
                got = {flag: one_run(name, flag, app_dir, args.duration, args.connections)
                       for flag in order}
                plain.append(got[False])
                agent.append(got[True])
                ratios.append(got[True] / got[False])
            print(f"| {name} | {', '.join(f'{v:.0f}' for v in plain)} | "
                  f"{', '.join(f'{v:.0f}' for v in agent)} | "
                  f"**{statistics.median(ratios):.3f}×** (min {min(ratios):.2f}, "
                  f"max {max(ratios):.2f}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
