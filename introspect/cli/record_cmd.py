"""`introspect record TARGET -o FILE [--duration S] [--max-bytes N]`: record the update stream
for `introspect top --replay` (format: docs/recording-format.md)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time

from introspect.cli.common import add_connection_args, connection_token
from introspect.client.aio import AsyncClient
from introspect.client.stream import Connected, Disconnected, TargetGone, Tick, watch
from introspect.client.target import Target, resolve_target
from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.recording.writer import Recorder, RecordingWriter

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 500k, 20M, 1G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record the update stream for later replay",
                       description="Record what the agent streams (a full snapshot, then "
                       "changes) into a compact compressed file; play it with `introspect top "
                       "--replay FILE`. Stops at --duration, at --max-bytes, when the target "
                       "exits, or on Ctrl-C; the file is valid in every case.")
    p.add_argument("target", help="PID, Unix socket path, or HOST:PORT")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="recording to write")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--max-bytes", type=parse_size, metavar="N",
                   help="stop once the file reaches N bytes (suffixes k, M, G)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between updates (default 1)")
    p.add_argument("--top", type=int, default=100, metavar="N",
                   help="tasks kept per update for the replay's task views (default 100)")
    add_connection_args(p)
    p.set_defaults(func=run)


class Progress:
    """One progress line on stderr, rewritten in place on a terminal, every few s otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, writer: RecordingWriter, elapsed: float, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        line = (f"recording {writer.path}: {writer.updates} updates, "
                f"{writer.bytes_written / 1024:.1f} KiB, {elapsed:.0f}s")
        end = "\n" if final or not self.tty else ""
        sys.stderr.write(("\r\x1b[K" if self.tty else "") + line + end)
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration must be positive")
    if not 0.1 <= args.interval <= 3600:
        raise UserError("--interval must be between 0.1 and 3600 seconds")
    target = resolve_target(args.target)
    recorder = Recorder(args.output, target=args.target, interval=args.interval,
                        top_tasks=args.top, recorder="introspect record")
    started = time.monotonic()
    progress = Progress()
    reason = "interrupted"
    try:
        reason = asyncio.run(_record(args, target, recorder, progress, started))
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        recorder.close(reason)
        if recorder.writer is not None:
            progress.show(recorder.writer, time.monotonic() - started, final=True)
    return 0


async def _record(args: argparse.Namespace, target: Target, recorder: Recorder,
                  progress: Progress, started: float) -> str:
    """Stream into `recorder` until a limit; the reason the recording ended. A first
    connection that fails and refusals retrying can't fix raise their one-line error."""
    stream = watch(target, token=connection_token(args), interval=args.interval,
                   top_tasks=max(0, args.top), timeout=args.timeout, name="introspect-record",
                   retry_first=False)
    history: asyncio.Task[list[m.HistorySample]] | None = None
    try:
        async for event in stream:
            if isinstance(event, Disconnected | TargetGone):
                # A recording ends with its target; a restarted one is a new recording.
                why = event.reason if isinstance(event, Disconnected) else "the process exited"
                sys.stderr.write(f"\nintrospect: the target went away ({why}); "
                                 "recording kept\n")
                return "target-exited"
            if isinstance(event, Connected):
                history = asyncio.create_task(_agent_history(args, target))
            if not isinstance(event, Tick):
                continue
            if history is not None and history.done():
                # Arrived before this update: written before it, where live `top` drew it.
                recorder.write_history(history.result())
                history = None
            writer = recorder.write(event.update)
            if writer is None:
                continue
            elapsed = time.monotonic() - started
            progress.show(writer, elapsed)
            if args.max_bytes is not None and writer.bytes_written >= args.max_bytes:
                return "max-bytes"
            if args.duration is not None and elapsed >= args.duration:
                return "duration"
    finally:
        if history is not None:
            history.cancel()
        await stream.aclose()
    return "closed"


async def _agent_history(args: argparse.Namespace, target: Target) -> list[m.HistorySample]:
    """The agent's recent past, on a connection of its own so the stream is not held up: the
    replay's charts then start with the minutes before the recording, as live `top`'s do.
    Empty from an agent older than the history request, or one that could not answer."""
    try:
        async with AsyncClient(target, token=connection_token(args), timeout=args.timeout,
                               name="introspect-record") as client:
            return await client.history()
    except UserError:
        return []
