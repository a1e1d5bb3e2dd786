"""Options and helpers shared by the commands that talk to an agent."""

from __future__ import annotations

import argparse

from introspect.client.connection import Client
from introspect.client.target import resolve_target


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the token (default: INTROSPECT_TOKEN / "
                        "INTROSPECT_TOKEN_FILE)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the agent (default 5)")


def token_from_args(args: argparse.Namespace) -> str | None:
    if getattr(args, "token_file", None):
        from introspect.config import read_token_file

        return read_token_file(args.token_file, "--token-file")
    return None


def connection_token(args: argparse.Namespace) -> str | None:
    """--token-file, else the targets file's token for a remote target (else the client
    falls back to INTROSPECT_TOKEN / INTROSPECT_TOKEN_FILE)."""
    token = token_from_args(args)
    if token is None and resolve_target(args.target).kind == "tcp":
        from introspect.client.targets_file import token_for

        token = token_for(args.target)
    return token


def open_client(args: argparse.Namespace, name: str = "introspect-cli") -> Client:
    target = resolve_target(args.target)
    return Client(target, token=connection_token(args), timeout=args.timeout,
                  name=name).connect()
