"""`introspect demo`: the demo service, observed. A TUI on a terminal; headless text otherwise."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from introspect.errors import UserError

HEADLESS_DEFAULT_DURATION = 60.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the demo service, observed",
        description="Run the demo service (a concurrent service that reproduces our users' "
        "production stories: a bottleneck queue, crash-looping workers, blocking calls, lock "
        "pile-ups, memory growth, a saturated pool) under the agent, and observe it: the TUI "
        "on a terminal, or a headless text report when stdout is not a terminal.")
    p.add_argument("--headless", action="store_true", help="text output even on a terminal")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help=f"stop after S seconds (headless default {HEADLESS_DEFAULT_DURATION:g};"
                        " 0 = run until Ctrl-C)")
    p.add_argument("--speed", type=float, default=None, metavar="X",
                   help="run the 60 s story cycle X times faster (headless default 2)")
    p.add_argument("--interval", type=float, default=5.0, metavar="S",
                   help="headless: seconds between reports (default 5)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="also serve Prometheus /metrics on this port")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    headless = args.headless or not sys.stdout.isatty()
    if not headless:
        try:
            import textual  # noqa: F401

            import introspect.cli.top_cmd  # noqa: F401
        except ImportError:
            headless = True
    duration = args.duration if args.duration is not None else (
        HEADLESS_DEFAULT_DURATION if headless else 0.0)
    speed = args.speed if args.speed is not None else (2.0 if headless else 1.0)
    if speed <= 0:
        raise UserError("--speed must be positive")
    if args.interval <= 0:
        raise UserError("--interval must be positive")
    cmd = [sys.executable, "-m", "introspect", "run", "--console"]
    if args.metrics_port is not None:
        cmd += ["--metrics-port", str(args.metrics_port)]
    cmd += ["--", sys.executable, "-m", "introspect.demo", "--speed", f"{speed:g}"]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    story: list[str] = []
    threading.Thread(target=_collect_story, args=(child, story), daemon=True).start()
    try:
        _wait_for_agent(child)
        if headless:
            return _headless(child, story, duration, args.interval, speed)
        return _tui(child)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(child)


def _collect_story(child: subprocess.Popen, story: list[str]) -> None:
    assert child.stderr is not None
    for line in child.stderr:
        if line.startswith("demo: ") or line.startswith("introspect: "):
            story.append(line.rstrip("\n"))


def _wait_for_agent(child: subprocess.Popen, timeout: float = 30.0) -> None:
    from introspect.protocol import discovery

    deadline = time.monotonic() + timeout
    path = discovery.socket_path(child.pid)
    while not path.exists():
        if child.poll() is not None:
            raise UserError(f"the demo exited early with status {child.returncode}")
        if time.monotonic() > deadline:
            raise UserError("the demo's agent did not come up within 30 s")
        time.sleep(0.05)


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(5)


def _tui(child: subprocess.Popen) -> int:
    from introspect.cli import top_cmd

    return int(top_cmd.run(argparse.Namespace(target=str(child.pid), replay=None,
                                              token_file=None, timeout=5.0)) or 0)


def _headless(child: subprocess.Popen, story: list[str], duration: float, interval: float,
              speed: float) -> int:
    from introspect.cli.headless_report import Reporter
    from introspect.client.connection import Client

    print(f"introspect demo: observing the demo service (pid {child.pid}), story cycle "
          f"{60 / speed:g} s, report every {interval:g} s"
          + (f", for {duration:g} s" if duration else "; Ctrl-C to stop"))
    print(f"  try in another terminal: introspect top {child.pid} | introspect snapshot "
          f"{child.pid} | introspect console {child.pid}")
    reporter = Reporter()
    started = time.monotonic()
    shown = 0
    with Client(str(child.pid), name="introspect-demo") as client:
        while True:
            elapsed = time.monotonic() - started
            if duration and elapsed >= duration:
                break
            time.sleep(min(interval, max(0.05, duration - elapsed) if duration else interval))
            if child.poll() is not None:
                raise UserError(f"the demo exited with status {child.returncode}")
            new_story, shown = story[shown:], len(story)
            for line in new_story:
                print(f"  | {line}")
            snap: Any = client.snapshot(top_tasks=0)
            print(reporter.report(snap, time.monotonic() - started), flush=True)
    print("introspect demo: done (run with --duration 0 to keep going)")
    return 0
