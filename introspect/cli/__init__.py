"""The `introspect` command line. One module per command: `<name>_cmd.py` with
`add_parser(subparsers)` that sets `func` on its parser; `func(args) -> int` is the exit code."""

from __future__ import annotations

import argparse
import importlib
import sys

from introspect.errors import UserError

# Order is the order of `introspect --help`.
COMMANDS = ["run", "ps", "snapshot", "top", "record", "console", "dump", "profile", "exact",
            "fleet", "demo", "export"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="introspect",
        description="Observe a running Python service: tasks, queues, threads, loop lag, GC, "
        "errors; metrics for Prometheus/OpenTelemetry; a live TUI; console, dumps and profiles.",
        epilog="TARGET is a PID, a Unix socket path, or HOST:PORT. "
        "Run `introspect COMMAND --help` for a command's options.",
    )
    from introspect import __version__

    parser.add_argument("--version", action="version", version=f"introspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"introspect.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"introspect.cli.{name}_cmd":
                raise
            continue  # command not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except KeyboardInterrupt:  # Ctrl-C while the commands are still importing
        return 130
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"introspect: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
