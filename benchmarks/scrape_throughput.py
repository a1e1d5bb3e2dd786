"""Workload A throughput while /metrics is scraped every second and OTLP exports every second.

    .venv/bin/python benchmarks/scrape_throughput.py [--rounds 3] [--duration 5]

Three variants, each in a fresh child process, alternating round after round:

- plain:     no agent at all
- agent:     `introspect.start()` with no exporter serving (the baseline cost of the agent)
- exporting: the agent with `/metrics` on port 0 scraped every 1 s by the parent, and `--otlp`
             exporting every 1 s (OTEL_METRIC_EXPORT_INTERVAL=1000) to a receiver in the parent

Target (issue 3): exporting ≥ 0.97 × plain.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, sys
sys.path.insert(0, {repo!r})
from benchmarks.workloads import workload_a
variant, duration = sys.argv[1], float(sys.argv[2])

async def main():
    if variant != "plain":
        import introspect
        agent = introspect.start(metrics_port=0 if variant == "exporting" else None,
                                 otlp=variant == "exporting")
        port = agent.extensions["metrics"].port
        print(f"port {{port}}", flush=True)
        await asyncio.sleep(1.0)  # first scrape and export happen before the clock starts
    rate = await workload_a(duration)
    print(f"rate {{rate}}", flush=True)

asyncio.run(main())
"""


class Receiver(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(variant: str, duration: float, otlp_endpoint: str) -> tuple[float, int]:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
           "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO)), variant,
                              str(duration)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env=env)
    scrapes = 0
    stop = threading.Event()

    def scraper(port: int) -> None:
        nonlocal scrapes
        while not stop.wait(1.0):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    r.read()
                scrapes += 1
            except OSError:
                pass

    rate = 0.0
    for line in child.stdout:
        if line.startswith("port ") and variant == "exporting":
            threading.Thread(target=scraper, args=(int(line.split()[1]),), daemon=True).start()
        elif line.startswith("rate "):
            rate = float(line.split()[1])
    stop.set()
    child.wait()
    return rate, scrapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    variants = ("plain", "agent", "exporting")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    scraped = 0
    for _round in range(args.rounds):
        for variant in variants:  # alternating
            rate, scrapes = run(variant, args.duration, endpoint)
            rates[variant].append(rate)
            scraped += scrapes
    server.shutdown()
    plain = statistics.median(rates["plain"])
    print("| variant | workload A msgs/s (median) | runs | ratio to plain |")
    print("|---|---|---|---|")
    for variant in variants:
        median = statistics.median(rates[variant])
        runs = ", ".join(f"{r:,.0f}" for r in rates[variant])
        print(f"| {variant} | {median:,.0f} | {runs} | {median / plain:.3f} |")
    print(f"\nscrapes answered: {scraped}; OTLP requests received: {Receiver.received}")


if __name__ == "__main__":
    main()
