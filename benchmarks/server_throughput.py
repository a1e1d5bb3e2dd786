"""Requests per second of real multi-worker servers with and without the agent (issue 14).

    .venv/bin/python benchmarks/server_throughput.py --rounds 3 --pairs 40 --burst 0.5

Configurations: uvicorn with 1 and 3 workers, gunicorn with 3 UvicornWorkers, serving a FastAPI
app (one `async def` endpoint). Each round starts the server twice, side by side: plain, and
under `introspect run --metrics-port 0` (metrics on, every worker serving its own port). After a
warm-up of each, this process drives them in **interleaved bursts**: `--burst` seconds of
keep-alive HTTP/1.1 load on one, then the same on the other (the order flips every pair),
`--pairs` times, with fresh connections every burst (so the kernel spreads them over the workers
anew each time). The server not under load sits idle meanwhile. `--pair plain,no-watchdog`
(plain or any part of server_cpu_per_request.py, two of them) compares other configurations
the same way; `--pair plain,plain` measures the method's own spread; `--matched-seeds` runs both
servers of round N with PYTHONHASHSEED=N.

Why interleaved: on the shared 2-core VM, back-to-back runs of several seconds each drifted by
±20 % per pair (other work, steal time, frequency), more than the effect to measure. Bursts
half a second apart see the same machine, so the drift cancels in each pair's ratio. Reported:
the median of the pairs' ratios agent/plain with its interquartile range, and the ratio of the
summed requests (pooled). The load generator is this Python process, on the same cores as the
server: absolute rates are low; the ratio is the figure.
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
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmarks.server_cpu_per_request, for --pair
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


async def _load_async(port: int, seconds: float, connections: int) -> float:
    """Requests per second over `seconds` of keep-alive load on fresh connections."""
    counts = [0]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(_client(port, deadline, counts) for _ in range(connections)))
    return counts[0] / (time.monotonic() - started)


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


def start_server(name: str, config: str, app_dir: Path, hash_seed: int | None = None,
                 port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """`config`: "plain", or a part of server_cpu_per_request.PARTS ("defaults", "no-watchdog",
    …: the agent with that part switched off, by option or by the workspace's shim)."""
    from benchmarks.server_cpu_per_request import PARTS

    port = port or free_port()
    argv = server_argv(name, port)
    env = {**os.environ, "INTROSPECT_RUNTIME_DIR": str(app_dir / "rt"),
           "PYTHONPATH": str(app_dir / "shim"), **(extra_env or {})}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = str(hash_seed)
    if config != "plain":
        extra, off, metrics = PARTS[config]
        env.update(extra)
        env["INTROSPECT_BENCH_OFF"] = off
        argv = [str(BIN / "introspect"), "run", *(["--metrics-port", "0"] if metrics else []),
                "--", *argv]
    proc = subprocess.Popen(argv, cwd=app_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, port


async def _interleave(ports: dict[bool, int], pairs: int, burst: float,
                      connections: int) -> list[tuple[float, float]]:
    """(baseline, other) requests per second of each pair of adjacent bursts."""
    for port in ports.values():  # warm-up: every worker up, imported, caches hot
        await _load_async(port, 2.0, connections)
    rates: list[tuple[float, float]] = []
    for pair in range(pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)
        got = {flag: await _load_async(ports[flag], burst, connections) for flag in order}
        rates.append((got[False], got[True]))
    return rates


def one_round(name: str, configs: tuple[str, str], app_dir: Path, pairs: int, burst: float,
              connections: int, hash_seed: int | None = None) -> list[tuple[float, float]]:
    servers = {flag: start_server(name, configs[flag], app_dir, hash_seed)
               for flag in (False, True)}
    try:
        for proc, port in servers.values():
            _wait_ready(port, proc)
        ports = {flag: port for flag, (_, port) in servers.items()}
        return asyncio.run(_interleave(ports, pairs, burst, connections))
    finally:
        for proc, _ in servers.values():
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
    parser.add_argument("--rounds", type=int, default=3,
                        help="server starts per configuration (default 3)")
    parser.add_argument("--pairs", type=int, default=40,
                        help="interleaved burst pairs per round (default 40)")
    parser.add_argument("--burst", type=float, default=0.5, help="seconds per burst")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--configs", default="uvicorn-1,uvicorn-3,gunicorn-3")
    parser.add_argument("--pair", default="plain,defaults",
                        help="BASELINE,OTHER: plain or a part of server_cpu_per_request.py "
                             "(e.g. plain,no-watchdog or defaults,no-task-factory)")
    parser.add_argument("--matched-seeds", action="store_true",
                        help="both servers of round N run with PYTHONHASHSEED=N")
    args = parser.parse_args()
    from benchmarks.server_cpu_per_request import PARTS, bench_workspace

    configs = args.pair.split(",")
    known = ["plain", *PARTS]
    if len(configs) != 2 or any(c not in known for c in configs):
        parser.error(f"--pair takes two of: {', '.join(known)}")
    baseline, other = configs
    with bench_workspace() as app_dir:
        print(f"| server | {baseline} req/s (median of bursts) | {other} req/s | median pair "
              "ratio (IQR) | pooled ratio | each round's pooled ratio |")
        print("|---|---|---|---|---|---|")
        for name in args.configs.split(","):
            rates: list[tuple[float, float]] = []
            per_round: list[float] = []
            for number in range(args.rounds):
                got = one_round(name, (baseline, other), app_dir, args.pairs, args.burst,
                                args.connections, number + 1 if args.matched_seeds else None)
                rates.extend(got)
                per_round.append(sum(a for _, a in got) / sum(p for p, _ in got))
            ratios = sorted(a / p for p, a in rates)
            q1, median, q3 = statistics.quantiles(ratios, n=4)
            pooled = sum(a for _, a in rates) / sum(p for p, _ in rates)
            print(f"| {name} | {statistics.median(p for p, _ in rates):.0f} | "
                  f"{statistics.median(a for _, a in rates):.0f} | **{median:.3f}×** "
                  f"({q1:.3f}–{q3:.3f}, {len(ratios)} pairs) | {pooled:.3f}× | "
                  f"{', '.join(f'{r:.3f}' for r in per_round)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
