"""`introspect console TARGET`: a Python prompt inside the target's event loop."""

from __future__ import annotations

import argparse

from introspect.cli.common import add_connection_args, open_client


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "console", help="Python console inside the target's event loop",
        description="Open a Python console that runs inside the target's event loop: "
        "top-level `await` works, the program's objects are reachable, and helpers list "
        "tasks() and queues(), cancel(id) a task, take a snapshot(). Needs an agent started "
        "with --console (INTROSPECT_CONSOLE=1) and the control role; every line is written "
        "to the agent's audit log. Ctrl-C cancels the input or the running code, Ctrl-D "
        "leaves.")
    p.add_argument("target", help="PID, Unix socket path, or HOST:PORT")
    add_connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from introspect.console.client import ConsoleClient

    with open_client(args, name="introspect-console") as client:
        return ConsoleClient(client).interact()
