"""`introspect snapshot TARGET [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from introspect.cli.common import add_connection_args, open_client


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="one snapshot: readable summary, or JSON",
                       description="Take one snapshot of a running agent: tasks by kind, "
                       "queues by backlog, threads, loop lag and run-queue, GC, memory/CPU, "
                       "recent unhandled exceptions.")
    p.add_argument("target", help="PID, Unix socket path, or HOST:PORT")
    p.add_argument("--json", action="store_true", help="print the snapshot JSON (schema 1)")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="include the N oldest tasks (default 20)")
    add_connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        snap = client.snapshot(top_tasks=max(0, args.top))
    if args.json:
        json.dump(snap.to_dict(), sys.stdout, indent=2, ensure_ascii=True)
        sys.stdout.write("\n")
    else:
        from introspect.cli.snapshot_text import render

        print(render(snap))
    return 0
