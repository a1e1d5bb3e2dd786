"""`introspect run [AGENT OPTIONS] -- CMD...`: run a Python program with the agent started
before its own code. The command replaces this process (exec), so argv, stdin, signals and the
exit code are the program's own."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from introspect.errors import UserError

BOOTSTRAP_DIR = Path(__file__).resolve().parent.parent / "bootstrap"


def add_agent_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agent options (each also has an INTROSPECT_* variable)")
    g.add_argument("--listen", action="append", metavar="ADDR",
                   help="unix:PATH or tcp://HOST:PORT (repeatable; default: the per-user "
                        "Unix socket)")
    g.add_argument("--token-file", metavar="FILE", help="control token for TCP clients")
    g.add_argument("--read-token-file", metavar="FILE", help="read-only token")
    g.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus /metrics on this port")
    g.add_argument("--metrics-addr", metavar="ADDR", help="address for /metrics (127.0.0.1)")
    g.add_argument("--otlp", action="store_true",
                   help="export metrics over OTLP (configured by OTEL_* variables)")
    g.add_argument("--console", action="store_true", help="allow the remote console")
    g.add_argument("--block-threshold", type=float, metavar="S",
                   help="report steps holding the loop longer than S seconds (default 0.1)")
    g.add_argument("--insecure-no-auth", action="store_true",
                   help="allow TCP without a token (loopback only)")


def agent_env(args: argparse.Namespace) -> dict[str, str]:
    env: dict[str, str] = {}
    if args.listen:
        env["INTROSPECT_LISTEN"] = ",".join(args.listen)
    if args.token_file:
        env["INTROSPECT_TOKEN_FILE"] = os.path.abspath(args.token_file)
    if args.read_token_file:
        env["INTROSPECT_READ_TOKEN_FILE"] = os.path.abspath(args.read_token_file)
    if args.metrics_port is not None:
        env["INTROSPECT_METRICS_PORT"] = str(args.metrics_port)
    if args.metrics_addr:
        env["INTROSPECT_METRICS_ADDR"] = args.metrics_addr
    if args.otlp:
        env["INTROSPECT_OTLP"] = "1"
    if args.console:
        env["INTROSPECT_CONSOLE"] = "1"
    if args.block_threshold is not None:
        env["INTROSPECT_BLOCK_THRESHOLD"] = str(args.block_threshold)
    if args.insecure_no_auth:
        env["INTROSPECT_INSECURE_NO_AUTH"] = "1"
    return env


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a Python program with the agent started before its code",
        description="Run CMD (a Python program: `python app.py`, `python -m pkg`, or a "
        "console script) with the introspect agent started before the program's own code. "
        "No code change needed; exit code, signals and stdin pass through.",
        usage="introspect run [AGENT OPTIONS] -- CMD [ARGS...]")
    add_agent_args(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    p.set_defaults(func=run)


def check_command(cmd: list[str]) -> str:
    """The executable's path; a clear error for a missing command or script."""
    exe = shutil.which(cmd[0])
    if exe is None:
        raise UserError(f"command not found: {cmd[0]}")
    if Path(cmd[0]).name.startswith("python"):
        script = next((a for a in cmd[1:] if not a.startswith("-")), None)
        flags = [a for a in cmd[1:] if a.startswith("-")]
        if script is not None and not any(f in ("-m", "-c") for f in flags) \
                and not Path(script).exists():
            raise UserError(f"no such file: {script}")
    return exe


def prepare_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["INTROSPECT_BOOTSTRAP"] = "1"
    # exec keeps this pid: the program is the root, its workers are not (see sitecustomize)
    env["INTROSPECT_ROOT_PID"] = str(os.getpid())
    parts = [str(BOOTSTRAP_DIR)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    # For a program run by another interpreter of the same version (see sitecustomize).
    env["INTROSPECT_SITE"] = os.pathsep.join(_site_dirs())
    env["INTROSPECT_PYTHON_VERSION"] = "{}.{}".format(*sys.version_info[:2])
    return env


def _site_dirs() -> list[str]:
    """Where introspect and its runtime dependencies are installed."""
    import msgspec
    import prometheus_client
    import psutil

    dirs: list[str] = []
    for module in (sys.modules["introspect"], msgspec, psutil, prometheus_client):
        parent = str(Path(module.__file__ or "").resolve().parent.parent)
        if parent not in dirs:
            dirs.append(parent)
    return dirs


def run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UserError("nothing to run: use `introspect run -- python app.py`")
    from introspect.config import from_env

    extra = agent_env(args)
    from_env({**os.environ, **extra})  # validate options now: one clear error, not in the child
    exe = check_command(cmd)
    env = prepare_env(extra)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(exe, cmd, env)
    except OSError as exc:
        raise UserError(f"cannot run {cmd[0]}: {exc.strerror}") from None
    return 0  # pragma: no cover
