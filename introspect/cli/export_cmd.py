"""`introspect export DIR`: the ops files that ship with the package, ready to deploy."""

from __future__ import annotations

import argparse
from pathlib import Path

from introspect.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write the Grafana dashboards, Prometheus rules and configs to DIR",
        description="Write the ops files of this introspect version into DIR: "
        "grafana/*.json (dashboards), prometheus/introspect.rules.yml (alert and recording "
        "rules) with their promtool tests in prometheus/tests/, prometheus/prometheus.yml (a "
        "scrape config whose rule_files path points at the rules next to it), and "
        "otel-collector/config.yaml. Check them with `promtool check rules` and "
        "`promtool test rules` from DIR/prometheus.")
    p.add_argument("dir", metavar="DIR", help="directory to write (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite files that differ")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from introspect.ops import export_tree

    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a directory")
    tree = export_tree()
    clashes = [rel for rel, text in tree.items()
               if (root / rel).exists() and (root / rel).read_text(errors="replace") != text]
    if clashes and not args.force:
        raise UserError(f"{root}: {len(clashes)} file(s) differ, e.g. {clashes[0]}; "
                        "use --force to overwrite")
    try:
        for rel, text in tree.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from None
    print(f"wrote {len(tree)} files to {root}")
    return 0
