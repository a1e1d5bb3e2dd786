"""Generate the repository's ops files from the package's code (introspect.ops): the rules and
their promtool tests in dashboards/alerts/, the dashboards in dashboards/grafana/, the configs in
exporters/. `introspect export DIR` writes the same files for an installed package.

    python -m dashboards.generate                       # rewrite the committed files
    python -m dashboards.generate --check               # exit 1 if they differ (CI)
    python -m dashboards.generate --set queue_backlog_min_items=500 --selector 'job=~"api.*"'
    python -m dashboards.generate --for-scale 0.05 --out /tmp/rules   # short `for:` for tests
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `introspect` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from introspect.ops import RULES_NAME, render_rules, repository_tree
from introspect.ops.alerts_gen import THRESHOLDS, RuleConfig, parse_override

REPO = Path(__file__).resolve().parent.parent
RULES_FILE = f"dashboards/alerts/{RULES_NAME}"  # relative to the repository root

__all__ = ["RULES_FILE", "main", "render_all", "render_rules"]


def render_all(config: RuleConfig | None = None) -> dict[str, str]:
    """Path relative to the repository root -> file text."""
    return repository_tree(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO,
                        help="root of the tree to write (default: this repository)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a threshold: " + ", ".join(THRESHOLDS))
    parser.add_argument("--selector", default="",
                        help='label matchers added to every rule series, e.g. job=~"api|worker"')
    parser.add_argument("--for-scale", type=float, default=1.0,
                        help="multiply every alert's `for:` (tests use 0.05)")
    parser.add_argument("--runbook-url", default=RuleConfig.runbook_url)
    args = parser.parse_args(argv)
    try:
        overrides = dict(parse_override(item) for item in args.set)
    except ValueError as exc:
        parser.error(str(exc))
    config = RuleConfig(selector=args.selector, runbook_url=args.runbook_url,
                        for_scale=args.for_scale, overrides=overrides)
    stale = []
    for rel, text in render_all(config).items():
        path = args.out / rel
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("out of date (run `python -m dashboards.generate`): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
