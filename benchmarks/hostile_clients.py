"""Host throughput on workload A while hostile clients attack the agent, versus no client;
and the host process's peak RSS (the agent lives in it). Fresh host per run, alternating
order; the ratio of medians is the result.

The mix (issue 13), from a separate process so its own CPU shows as competition, not as agent
work: subscribers that stop reading, clients flooding dumps (reading them) and clients that
send a dump and never read, a pre-login flood (connections that send nothing, reopened when
closed), a wrong-token brute force, and logged-in read clients that sit idle.

    .venv/bin/python benchmarks/hostile_clients.py [--rounds 4] [--duration 5] [--tasks 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.security.support import rss_bytes, tcp_address, write_tokens  # noqa: E402
from tests.support.procs import AgentProcess  # noqa: E402

HOST = f"""
import asyncio, sys, time
sys.path.insert(0, {str(ROOT)!r})
from benchmarks.workloads import workload_a

async def idle():
    await asyncio.sleep(3600)

async def main():
    keep = [asyncio.create_task(idle()) for _ in range(int(sys.argv[2]))]  # what dumps walk
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    wall, loop_cpu = time.perf_counter(), time.thread_time()
    rate = await workload_a(duration=float(sys.argv[1]))
    wall, loop_cpu = time.perf_counter() - wall, time.thread_time() - loop_cpu
    # also per CPU second of the loop thread: what the agent takes from the app's loop
    # (GIL), apart from the attackers and other programs competing for the cores
    print(f"rate {{rate:.1f}} {{rate * wall / loop_cpu:.1f}}", flush=True)

asyncio.run(main())
"""

ATTACKERS = """
import socket, sys, threading, time
sys.path.insert(0, ROOT)
from introspect.protocol import framing
from introspect.protocol import messages as m
from tests.security.support import raw_connect, raw_login

host, port = sys.argv[1], int(sys.argv[2])
control, read, mix = sys.argv[3], sys.argv[4], sys.argv[5].split(",")
address = (host, port)
holds = []

def logged_in(token, source):
    reply, sock = raw_login(address, token, source)
    assert isinstance(reply, m.Welcome), reply
    return sock

def send(sock, message):
    sock.sendall(framing.pack(m.encode(message)))

def forever(fn):
    def run():
        while True:
            try:
                fn()
            except Exception:
                time.sleep(0.05)
    threading.Thread(target=run, daemon=True).start()

for i in range(10 if "stalled" in mix else 0):  # subscribers that never read
    sock = logged_in(control, "127.0.0.2")
    send(sock, m.Subscribe(interval=0.1, top_tasks=1000))
    holds.append(sock)
for i in range(10 if "dumps" in mix else 0):  # a dump each, never read
    sock = logged_in(control, "127.0.0.3")
    send(sock, m.DumpRequest(id=1, max_tasks=100_000))
    holds.append(sock)
for i in range(20 if "idle" in mix else 0):  # idle read clients
    holds.append(logged_in(read, "127.0.0.4"))

def dump_flood(source):
    sock = logged_in(read, source)
    n = 0
    while True:
        n += 1
        send(sock, m.DumpRequest(id=n, max_tasks=100_000))
        framing.recv_frame_blocking(sock, framing.MAX_FRAME_TO_CLIENT)

for source in ("127.0.0.5", "127.0.0.6") if "dumps" in mix else ():
    forever(lambda source=source: dump_flood(source))

def pre_login(source):
    sock = raw_connect(address, source)
    sock.settimeout(None)
    sock.recv(1)  # until the agent closes it (handshake timeout)
    sock.close()

# 8 sources x 8: every login slot the agent has for strangers
for k in range(64 if "prelogin" in mix else 0):
    forever(lambda k=k: pre_login(f"127.0.1.{k // 8 + 1}"))

def brute_force():
    reply, sock = raw_login(address, "wrong-token-wrong-token", "127.0.0.9")
    sock.close()

for _ in range(4 if "bruteforce" in mix else 0):
    forever(brute_force)

print("attacking", flush=True)
sys.stdin.read()
"""


MIX = "stalled,dumps,idle,prelogin,bruteforce"


def one_run(hostile: bool, duration: float, tasks: int, tokens: list[str],
            tokens_dir: Path, mix: str) -> tuple[float, float, int, int]:
    """(messages/s of workload A, the same per loop-thread CPU second, RSS before the
    attack, peak RSS during the run)."""
    proc = AgentProcess([sys.executable, "-m", "introspect", "run", "--listen",
                         "tcp://127.0.0.1:0", *tokens, "--", sys.executable, "-c", HOST,
                         str(duration), str(tasks)])
    with proc:
        proc.wait_for_line("ready")
        host, port = tcp_address(proc)
        base = rss_bytes(proc.pid)
        attackers = None
        if hostile:
            attackers = subprocess.Popen(
                [sys.executable, "-c", f"ROOT = {str(ROOT)!r}\n" + textwrap.dedent(ATTACKERS),
                 host, str(port), (tokens_dir / "control.token").read_text(),
                 (tokens_dir / "read.token").read_text(), mix],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert attackers.stdout is not None
            line = attackers.stdout.readline()
            if line.strip() != "attacking":
                raise RuntimeError(f"attackers did not start: {line!r}")
        peak = [base]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_bytes(proc.pid))
                except (OSError, AssertionError):
                    return
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            assert proc.proc.stdin is not None
            proc.proc.stdin.write("go\n")
            proc.proc.stdin.flush()
            line = proc.wait_for_line("rate ", timeout=duration + 120)
            return float(line.split()[1]), float(line.split()[2]), base, peak[0]
        finally:
            done.set()
            sampler.join(5)
            if attackers is not None:
                attackers.kill()
                attackers.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=5000, help="idle tasks a dump walks")
    parser.add_argument("--mix", default=MIX, help=f"comma-separated subset of {MIX}")
    args = parser.parse_args()
    os.environ.setdefault("INTROSPECT_RUNTIME_DIR", tempfile.mkdtemp(prefix="introspect-bench-"))
    tokens_dir = Path(tempfile.mkdtemp(prefix="introspect-bench-tokens-"))
    tokens = write_tokens(tokens_dir)
    rates: dict[bool, list[float]] = {False: [], True: []}
    per_loop_cpu: dict[bool, list[float]] = {False: [], True: []}
    peaks: list[int] = []
    for round_ in range(args.rounds):
        for hostile in ((False, True) if round_ % 2 == 0 else (True, False)):
            rate, loop_rate, base, peak = one_run(hostile, args.duration, args.tasks, tokens,
                                                  tokens_dir, args.mix)
            rates[hostile].append(rate)
            per_loop_cpu[hostile].append(loop_rate)
            if hostile:
                peaks.append(peak)
            label = "hostile mix" if hostile else "no client"
            print(f"round {round_ + 1}: {label:<12} {rate:>10,.0f} msg/s {loop_rate:>10,.0f} "
                  f"msg/loop-CPU-s  RSS {base >> 20} MiB -> peak {peak >> 20} MiB", flush=True)
    print(f"mix: {args.mix}")
    for name, table in (("msg/s", rates), ("msg/loop-thread-CPU-s", per_loop_cpu)):
        quiet, attacked = statistics.median(table[False]), statistics.median(table[True])
        ratios = sorted(h / q for h in table[True] for q in table[False])
        print(f"median {name}: no client {quiet:,.0f}; hostile mix {attacked:,.0f}; ratio "
              f"{attacked / quiet:.3f} (pairwise {ratios[0]:.3f}-{ratios[-1]:.3f})")
    print(f"peak RSS under attack: median {statistics.median(peaks) / (1 << 20):.0f} MiB, "
          f"max {max(peaks) / (1 << 20):.0f} MiB")


if __name__ == "__main__":
    main()
