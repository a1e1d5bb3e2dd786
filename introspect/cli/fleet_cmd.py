"""`introspect fleet --prometheus URL [--selector SEL] [--json]`: every instance Prometheus knows,
ranked by trouble. `introspect top --prometheus URL` shows the same ranking live."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from introspect.errors import UserError

if TYPE_CHECKING:
    from introspect.fleet.refresh import FleetSource

EPILOG = """\
The score (docs/fleet.md): each signal divided by its alert threshold r, scored log2(1 + r) —
loop lag p99 (0.25 s), time the loop was blocked (1 s per 5m), fastest queue growth (100 items
per 10m), task crashes of the worst kind (3 per 15m), vanished task kinds (1), RSS growth (10%%
per hour, above 128 MiB) — plus 2 per firing critical alert, 1 per firing warning (half while
pending), plus 100 when the scrape fails.

Credentials and TLS from the environment: INTROSPECT_PROMETHEUS_URL, INTROSPECT_PROMETHEUS_TOKEN
(or _TOKEN_FILE) for a bearer token, INTROSPECT_PROMETHEUS_USER with _PASSWORD (or
_PASSWORD_FILE) for basic auth, INTROSPECT_PROMETHEUS_CA for a private CA.

Works with Prometheus, Thanos Query, Mimir and VictoriaMetrics: it uses only /api/v1/query,
/api/v1/query_range, /api/v1/alerts and /api/v1/targets.
examples:
  introspect fleet --prometheus http://localhost:9090
  introspect fleet --prometheus http://prom:9090 --selector '{job="api"}' --json | jq .
  introspect top --prometheus http://prom:9090 --selector '{job=~"api|worker"}'
"""


def add_prometheus_args(p: argparse.ArgumentParser, url_help: str = "") -> None:
    """The options `fleet` and `top --prometheus` share (`top` passes no url_help)."""
    g = p.add_argument_group("fleet (Prometheus)" if not url_help else "Prometheus")
    g.add_argument("--prometheus", metavar="URL", help=url_help or "open the Fleet screen: "
                   "every instance this Prometheus (Thanos, Mimir, VictoriaMetrics) knows, "
                   "ranked by trouble; Enter attaches (see `introspect fleet --help`)")
    if not url_help:
        g.add_argument("--refresh", type=float, default=10.0, metavar="S",
                       help="seconds between fleet refreshes (default 10, at least 2)")
    g.add_argument("--selector", metavar="'{LABEL=\"VALUE\"}'", default="",
                   help="only instances whose series match these label matchers, e.g. "
                   "'{job=\"api\"}'")
    g.add_argument("--limit", type=int, default=500, metavar="N",
                   help="at most N instances per signal in each answer (topk; default 500)")
    g.add_argument("--prometheus-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for each Prometheus answer (default 10)")
    g.add_argument("--prometheus-token-file", metavar="FILE",
                   help="bearer token for Prometheus (default INTROSPECT_PROMETHEUS_TOKEN)")
    g.add_argument("--prometheus-user", metavar="USER",
                   help="basic-auth user (default INTROSPECT_PROMETHEUS_USER; the password "
                   "from INTROSPECT_PROMETHEUS_PASSWORD or --prometheus-password-file)")
    g.add_argument("--prometheus-password-file", metavar="FILE", help="basic-auth password")
    g.add_argument("--prometheus-ca", metavar="FILE",
                   help="CA certificate(s) for an https URL (default INTROSPECT_PROMETHEUS_CA)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="every instance Prometheus knows, ranked by trouble",
                       description="List every instance a Prometheus-compatible server "
                       "scrapes, worst first: loop lag, blocked loop, growing queues, crash "
                       "loops, vanished task kinds, memory growth, scrape health, with the "
                       "active alerts beside each.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prometheus_args(p, "the Prometheus (Thanos, Mimir, VictoriaMetrics) base URL, e.g. "
                        "http://localhost:9090 (default INTROSPECT_PROMETHEUS_URL)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--rows", type=int, default=0, metavar="N",
                   help="print only the N worst instances (default all)")
    p.add_argument("--no-sparklines", action="store_true",
                   help="skip the last hour's range queries")
    p.set_defaults(func=run)


def source_from_args(args: argparse.Namespace, *, sparklines: bool = True) -> FleetSource:
    """A FleetSource for these options (imports deferred: `introspect --help` stays fast)."""
    from introspect.fleet.api import ENV_URL, PrometheusAPI, auth_from
    from introspect.fleet.queries import FleetQueries, parse_selector
    from introspect.fleet.refresh import FleetSource

    url = args.prometheus or os.environ.get(ENV_URL)
    if not url:
        raise UserError(f"give --prometheus URL (or set {ENV_URL}), e.g. "
                        "--prometheus http://localhost:9090")
    if not 1 <= args.limit <= 100_000:
        raise UserError("--limit must be between 1 and 100000")
    if not 0.1 <= args.prometheus_timeout <= 600:
        raise UserError("--prometheus-timeout must be between 0.1 and 600 seconds")
    auth = auth_from(token_file=args.prometheus_token_file, user=args.prometheus_user,
                     password_file=args.prometheus_password_file)
    api = PrometheusAPI(url, auth=auth, ca_file=args.prometheus_ca,
                        timeout=args.prometheus_timeout)
    return FleetSource(api, FleetQueries(parse_selector(args.selector), args.limit),
                       sparklines=sparklines)


def run_fleet_top(args: argparse.Namespace) -> int:
    """`introspect top --prometheus URL`: the TUI opened on the Fleet screen."""
    if getattr(args, "target", None) or getattr(args, "replay", None):
        raise UserError("give either --prometheus URL or a TARGET/--replay, not both")
    if not 2 <= args.refresh <= 3600:
        raise UserError("--refresh must be between 2 and 3600 seconds")
    try:
        from introspect.tui.fleet_app import FleetApp
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("textual", "rich"):
            raise UserError("the TUI needs Textual: pip install 'introspect[tui]'") from None
        raise
    from introspect.cli.common import token_from_args

    if not 0.1 <= args.interval <= 3600:
        raise UserError("--interval must be between 0.1 and 3600 seconds")
    source = source_from_args(args)
    source.api.query("vector(1)")  # a wrong URL or credentials: one line before the screen

    FleetApp(source, refresh=args.refresh, token=token_from_args(args),
             interval=args.interval).run()
    return 0


def run(args: argparse.Namespace) -> int:
    from introspect.fleet.render import report_text

    if args.rows < 0:
        raise UserError("--rows must be 0 (all) or more")
    source = source_from_args(args, sparklines=not args.no_sparklines)
    try:
        report = source.refresh()
    finally:
        source.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report_text(report, args.rows or None))
    return 0
