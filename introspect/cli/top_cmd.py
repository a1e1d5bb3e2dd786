"""`introspect top [TARGET] | --replay FILE`: the observer TUI."""

from __future__ import annotations

import argparse

from introspect.cli.common import add_connection_args, token_from_args
from introspect.cli.fleet_cmd import add_prometheus_args, run_fleet_top
from introspect.errors import UserError

VIEW_NAMES = ["system", "load", "tasks", "tree", "queues", "threads", "memory", "errors",
              "metrics", "nodes"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("top", help="the observer TUI; no TARGET: choose from `ps`",
                       description="Attach a live observer to a running agent: tasks, tree, "
                       "queues, threads, memory & GC, errors, metrics, nodes. Without TARGET, "
                       "pick one of the local agents or of the targets file. With --replay, "
                       "play a recording made by `introspect record` in the same screens.")
    p.add_argument("target", nargs="?", help="PID, Unix socket path, HOST:PORT or a name from "
                   "the targets file")
    p.add_argument("--replay", metavar="FILE", help="play a recording instead of a live agent")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between updates (default 1)")
    p.add_argument("--record", metavar="FILE", help="also record the live stream to FILE")
    p.add_argument("--view", choices=VIEW_NAMES, help="view to open first")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="replay speed (default 1)")
    p.add_argument("--paused", action="store_true", help="open a replay paused")
    p.add_argument("--start", type=int, default=0, metavar="N",
                   help="open a replay at update N (0-based)")
    add_connection_args(p)
    add_prometheus_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "prometheus", None):
        return run_fleet_top(args)
    try:
        from introspect.tui.app import IntrospectApp
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("textual", "rich"):
            raise UserError("the TUI needs Textual: pip install 'introspect[tui]'") from None
        raise

    # Other commands (`introspect demo`) call us with only some options set.
    for name, default in (("replay", None), ("target", None), ("interval", 1.0),
                          ("record", None), ("view", None), ("speed", 1.0), ("paused", False),
                          ("start", 0), ("token_file", None)):
        if not hasattr(args, name):
            setattr(args, name, default)

    if args.replay and args.target:
        raise UserError("give either TARGET or --replay FILE, not both")
    if not 0.1 <= args.interval <= 3600:
        raise UserError("--interval must be between 0.1 and 3600 seconds")
    if args.speed <= 0:
        raise UserError("--speed must be positive")
    recording = None
    if args.replay:
        from introspect.recording.reader import read_recording

        recording = read_recording(args.replay)
    elif args.target:
        from introspect.client.target import resolve_target

        resolve_target(args.target)  # a bad target is a one-line error before the screen opens
    app = IntrospectApp(target=args.target, token=token_from_args(args),
                        interval=args.interval, recording=recording, replay_start=args.start,
                        replay_playing=not args.paused, replay_speed=args.speed,
                        record_to=args.record, initial_view=args.view)
    app.run()
    if app.failure is not None:  # the first connection failed or was refused: say why
        raise UserError(app.failure.reason, exit_code=app.failure.exit_code)
    return 0
