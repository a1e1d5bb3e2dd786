"""`python -m introspect.demo [--duration S] [--speed X] [--quiet]`."""

from __future__ import annotations

import argparse
import asyncio

from introspect.demo.service import run_demo


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m introspect.demo",
        description="A small asyncio service that reproduces, on a 60 s cycle, the failures "
        "introspect is built to show: a bottleneck queue, crash-looping workers, blocking "
        "calls, tasks stuck on a lock, GC churn and memory growth, a saturated thread pool, "
        "unhandled exceptions. It does not need introspect's agent; observe it with "
        "`introspect run -- python -m introspect.demo`.",
    )
    parser.add_argument(
        "--duration", type=positive_float, metavar="S", help="exit cleanly after S seconds"
    )
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="run the schedule X times faster (blocking calls keep their real length)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log story phases on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(run_demo(duration=args.duration, speed=args.speed, quiet=args.quiet))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    return 0
