"""`introspect exact TARGET [--seconds S]`: exact accounting for a bounded time, then the
report: steps (polls), busy time and scheduling delay per task kind (with percentiles from the
log2 histograms) and the busiest tasks. Needs the control role (it changes how the target's
loop runs, for S seconds); `--last` only reads the latest report (read role is enough)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import msgspec

from introspect.cli.common import add_connection_args, open_client
from introspect.cli.profile_cmd import ProgressBar
from introspect.client.connection import AgentError
from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.textfmt import duration, histogram_quantile
from introspect.textsafe import escape

MAX_SECONDS = 600.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exact", help="exact busy time, steps and scheduling delay per task, for S seconds",
        description="Switch on exact accounting in the target for a bounded time (every task "
        "step timed: busy time, scheduling delay from wake-up to run, histograms per kind), "
        "wait for it with a progress bar, and print the report. Costs the target's loop a few "
        "percent while it runs (BENCHMARKS.md); it switches itself off at the end. Not "
        "available under uvloop (the snapshot's limitations say why).")
    p.add_argument("target", help="PID, Unix socket path, or HOST:PORT")
    p.add_argument("--seconds", type=float, default=10.0, metavar="S",
                   help="how long to account (default 10, at most 600)")
    p.add_argument("--last", action="store_true",
                   help="only print the latest report (running or finished); start nothing")
    p.add_argument("--tasks", type=int, default=15, metavar="N",
                   help="show the N busiest tasks (default 15)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.last and not 0 < args.seconds <= MAX_SECONDS:
        raise UserError(f"--seconds must be more than 0 and at most {MAX_SECONDS:g}")
    if args.tasks < 0:
        raise UserError("--tasks must be 0 or more")
    with open_client(args, name="introspect-exact") as client:
        if args.last:
            report = client.exact_report()
            if report is None:
                raise UserError(f"{args.target}: no exact accounting has run in this process "
                                "yet (start one: introspect exact TARGET --seconds S)")
        else:
            report = _account(client, args.seconds)
    if args.json:
        json.dump(msgspec.to_builtins(report), sys.stdout, indent=2, ensure_ascii=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(report, args.tasks) + "\n")
    return 0


def _account(client: Any, seconds: float) -> m.ExactSessionReport:
    try:
        client.exact_accounting(seconds)
    except AgentError as exc:
        if exc.code == "forbidden":
            raise UserError(f"{exc} (exact accounting needs the control role)") from None
        raise
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    started = time.monotonic()
    deadline = started + seconds + 10.0
    report = None
    try:
        while time.monotonic() < deadline:
            elapsed = time.monotonic() - started
            if bar is not None:
                bar(min(elapsed, seconds), seconds)
            if elapsed >= seconds:
                report = client.exact_report()
                if report is not None and not report.running:
                    break
            time.sleep(min(0.2, max(0.05, seconds - elapsed)))
    finally:
        if bar is not None:
            bar.finish()
    if report is None or report.running:
        raise UserError(f"the session did not end within {seconds + 10:g}s: is the target's "
                        "loop stuck? (introspect dump TARGET shows where)")
    return report


def render(report: m.ExactSessionReport, tasks: int = 15) -> str:
    kinds = report.kinds
    steps = sum(k.steps for k in kinds.values())
    state = "running" if report.running else "finished"
    cb = report.callbacks
    lines = [f"exact accounting ({report.implementation}): {state}, "
             f"{duration(report.elapsed)} of {report.seconds:g}s, "
             f"{steps:,} task steps, {cb.steps:,} other callbacks "
             f"({duration(cb.busy_seconds)} busy)", ""]
    lines.append(f"{'steps':>10} {'busy':>8} {'busy/step':>9} {'p99 ≤':>8} "
                 f"{'delay/step':>10} {'p99 ≤':>8}  kind")
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1].busy_seconds)
    for name, k in ranked:
        n = max(1, k.steps)
        lines.append(
            f"{k.steps:>10,} {duration(k.busy_seconds):>8} "
            f"{duration(k.busy_seconds / n):>9} "
            f"{duration(histogram_quantile(k.busy_histogram, 0.99)):>8} "
            f"{duration(k.delay_seconds_total / n):>10} "
            f"{duration(histogram_quantile(k.delay_histogram, 0.99)):>8}  {escape(name, 60)}")
    rows = report.tasks[:tasks]
    if rows:
        lines += ["", f"busiest {len(rows)} tasks:",
                  f"{'id':>8} {'steps':>8} {'busy':>8} {'busy/step':>9} {'max delay':>9}  "
                  "name (kind)"]
        for t in rows:
            n = max(1, t.steps)
            lines.append(f"{t.id:>8} {t.steps:>8,} {duration(t.busy_seconds):>8} "
                         f"{duration(t.busy_seconds / n):>9} "
                         f"{duration(t.delay_max_seconds):>9}  "
                         f"{escape(t.name, 40)} ({escape(t.kind, 50)})")
    return "\n".join(lines)
