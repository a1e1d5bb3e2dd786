"""`introspect ps`: agent-enabled processes of this user on this host."""

from __future__ import annotations

import argparse
import json
import time

from introspect.protocol import discovery
from introspect.textsafe import escape


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ps", help="agent-enabled processes on this host",
                       description="List the processes of this user that run an introspect "
                       "agent (stale entries of dead processes are removed).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    agents = discovery.list_agents()
    if args.json:
        print(json.dumps([a.__dict__ for a in agents], indent=2))
        return 0
    if not agents:
        print("no agent-enabled processes (start one with `introspect run -- python app.py`)")
        return 0
    pids = {a.pid for a in agents}
    print(f"{'PID':>7} {'PPID':>7} {'UPTIME':>8}  {'LISTEN':<28} COMMAND")
    now = time.time()
    for a in agents:
        parent = f"{a.ppid}*" if a.ppid in pids else str(a.ppid)
        listen = a.tcp or "unix"
        if a.metrics:
            listen += " +metrics"
        up = now - a.started_at
        uptime = f"{up:.0f}s" if up < 120 else (f"{up / 60:.0f}m" if up < 7200 else
                                                 f"{up / 3600:.1f}h")
        print(f"{a.pid:>7} {parent:>7} {uptime:>8}  {escape(listen, 28):<28} "
              f"{escape(' '.join(a.argv), 80)}")
    if any(a.ppid in pids for a in agents):
        print("(* parent is an agent-enabled process too)")
    return 0
