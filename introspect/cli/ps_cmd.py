"""`introspect ps`: agent-enabled processes of this user on this host."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from introspect.errors import UserError
from introspect.protocol import discovery
from introspect.protocol.process_roles import identities
from introspect.textsafe import escape


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ps", help="agent-enabled processes on this host",
                       description="List the processes of this user that run an introspect "
                       "agent (stale entries of dead processes are removed).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--prometheus-sd", metavar="FILE", nargs="?", const="-",
                   help="Prometheus file_sd targets of every /metrics endpoint (each worker's "
                        "own), to FILE (rewritten atomically) or stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    agents = discovery.list_agents()
    names = identities(agents)
    if args.prometheus_sd:
        return _prometheus_sd(args.prometheus_sd, agents)
    if args.json:
        for a in agents:
            a.command, a.role = names[a.pid].command, names[a.pid].role
        print(json.dumps([a.__dict__ for a in agents], indent=2))
        return 0
    if not agents:
        print("no agent-enabled processes (start one with `introspect run -- python app.py`)")
        return 0
    pids = {a.pid for a in agents}
    print(f"{'PID':>7} {'PPID':>7} {'UPTIME':>8}  {'ROLE':<8} {'LISTEN':<28} COMMAND")
    now = time.time()
    for a in agents:
        parent = f"{a.ppid}*" if a.ppid in pids else str(a.ppid)
        listen = a.tcp or "unix"
        if a.metrics:
            listen += " +metrics"
        up = now - a.started_at
        uptime = f"{up:.0f}s" if up < 120 else (f"{up / 60:.0f}m" if up < 7200 else
                                                 f"{up / 3600:.1f}h")
        who = names[a.pid]
        print(f"{a.pid:>7} {parent:>7} {uptime:>8}  {who.role:<8} {escape(listen, 28):<28} "
              f"{escape(' '.join(who.command), 80)}")
    if any(a.ppid in pids for a in agents):
        print("(* parent is an agent-enabled process too)")
    return 0


def _prometheus_sd(target: str, agents: list[discovery.Announcement]) -> int:
    from introspect.metrics import service_discovery

    if target == "-":
        print(json.dumps(service_discovery.targets(agents), indent=2))
        return 0
    path = Path(target)
    if not path.parent.is_dir():
        raise UserError(f"--prometheus-sd: no such directory: {path.parent}")
    try:
        service_discovery.write_file(path, agents)
    except OSError as exc:
        raise UserError(f"--prometheus-sd: cannot write {path}: {exc.strerror}") from None
    return 0
