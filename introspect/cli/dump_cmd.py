"""`introspect dump TARGET [--json]`: every thread's stack and every task's await chain.

From the agent first, with a short deadline: its server thread answers even while the event
loop is blocked in Python code. When it can't (no agent, dead socket, the GIL held by C code),
`py-spy dump` reads the process from outside, and the output says which one was used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from introspect.cli.common import token_from_args
from introspect.client.connection import AgentError, Client
from introspect.client.target import Target, resolve_target
from introspect.errors import AuthError, ConnectError, UserError
from introspect.protocol import discovery
from introspect.protocol import messages as m

AGENT_DEADLINE = 2.0  # seconds: beyond this the agent is stuck and py-spy is the better bet
FROM_AGENT = "(from the agent)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dump", help="all thread stacks + task await chains (py-spy if the agent can't answer)",
        description="Print every thread's stack and every asyncio task's await chain, from "
        "the agent. If the agent does not answer within the deadline (no agent, the process "
        "is stuck with the GIL held), fall back to `py-spy dump` of the process and say so.")
    p.add_argument("target", help="PID, Unix socket path, or HOST:PORT")
    p.add_argument("--json", action="store_true", help="print JSON (field `source` is "
                   "\"agent\" or \"py-spy\")")
    p.add_argument("--max-tasks", type=int, default=10_000, metavar="N",
                   help="at most N tasks from the agent (default 10000)")
    p.add_argument("--deadline", type=float, default=AGENT_DEADLINE, metavar="S",
                   help=f"seconds to wait for the agent before using py-spy (default "
                        f"{AGENT_DEADLINE:g})")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the token (default: INTROSPECT_TOKEN / "
                        "INTROSPECT_TOKEN_FILE)")
    p.set_defaults(func=run)


@dataclass
class DumpOutcome:
    source: str  # "agent" | "py-spy"
    pid: int | None
    reply: m.DumpReply | None = None
    pyspy: Any = None  # introspect.profiling.pyspy.DumpResult
    reason: str = ""  # why the agent was not used


def run(args: argparse.Namespace) -> int:
    outcome = fetch(args.target, token_from_args(args), max(0, args.max_tasks),
                    max(0.1, args.deadline))
    if args.json:
        json.dump(to_json(outcome), sys.stdout, indent=2, ensure_ascii=True, default=str)
        sys.stdout.write("\n")
    else:
        from introspect.cli.dump_text import render

        sys.stdout.write(render(outcome))
    return 0


def fetch(text: str, token: str | None, max_tasks: int, deadline: float) -> DumpOutcome:
    try:
        target = resolve_target(text)
    except ConnectError as exc:  # e.g. a PID without an agent: py-spy can still look
        pid = int(text) if text.strip().isdigit() else None
        return _via_pyspy(pid, str(exc), text)
    started = time.monotonic()
    try:
        client = Client(target, token=token, timeout=deadline, name="introspect-dump")
        with client.connect():
            remaining = max(0.2, deadline - (time.monotonic() - started))
            reply = client.dump(max_tasks=max_tasks, timeout=remaining)
        return DumpOutcome("agent", reply.pid, reply=reply)
    except AuthError:
        raise  # a wrong token is the user's to fix, not a reason to bypass the agent
    except AgentError as exc:
        if exc.code == "forbidden":
            raise
        return _via_pyspy(target.pid or client.agent_pid,
                          "it failed: " + _short_reason(str(exc), target), text)
    except ConnectError as exc:
        pid = target.pid or client.agent_pid
        return _via_pyspy(pid, _short_reason(str(exc), target), text)


def _short_reason(message: str, target: Target) -> str:
    prefix = f"{target}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _via_pyspy(pid: int | None, reason: str, text: str) -> DumpOutcome:
    if pid is None:
        raise UserError(f"the agent at {text} did not answer ({reason}), and py-spy needs the "
                        "PID of a local process: run `introspect dump PID` on its host")
    if not discovery.pid_alive(pid):
        raise ConnectError(f"no process with PID {pid} ({reason})")
    from introspect.profiling import pyspy

    return DumpOutcome("py-spy", pid, pyspy=pyspy.dump(pid), reason=reason)


def to_json(outcome: DumpOutcome) -> dict[str, Any]:
    if outcome.reply is not None:
        body = msgspec.to_builtins(outcome.reply)
        body.pop("type", None)
        body.pop("id", None)
        return {"source": "agent", **body}
    body = msgspec.to_builtins(outcome.pyspy) if outcome.pyspy is not None else {}
    if not isinstance(body, dict):
        body = {"result": body}
    return {"source": "py-spy", "pid": outcome.pid, "reason": outcome.reason, **body}
