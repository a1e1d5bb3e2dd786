"""Drive `introspect console` for real: through a pseudo-terminal (pexpect) where the terminal
matters (Ctrl-C, Ctrl-D, history), through a pipe where it does not. (A module of its own, not
conftest: the suite has several conftest modules.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect

from introspect.protocol import discovery
from tests.support.procs import AgentProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
PROMPT = ">>> "
TIMEOUT = 20


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("INTROSPECT_TOKEN", "INTROSPECT_TOKEN_FILE", "INTROSPECT_READ_TOKEN"):
        env.pop(name, None)
    env.update(extra)
    return env


def spawn_console(target: str, home: Path, **env: str) -> pexpect.spawn:
    """`introspect console TARGET` in a real pseudo-terminal, at its first prompt."""
    child = pexpect.spawn(sys.executable, ["-m", "introspect", "console", target],
                          encoding="utf-8", timeout=TIMEOUT, cwd=str(REPO),
                          env=cli_env(HOME=str(home), TERM="xterm", **env),
                          dimensions=(40, 200))
    child.expect_exact(PROMPT)
    return child


def run_line(child: pexpect.spawn, line: str) -> str:
    """Type a line; return what the console printed before the next prompt."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    echoed = child.before.replace("\r\n", "\n")
    return echoed.split("\n", 1)[1] if "\n" in echoed else ""


def run_piped(target: str, text: str, **env: str) -> subprocess.CompletedProcess:
    """`introspect console TARGET` reading its input from a pipe."""
    return subprocess.run([sys.executable, "-m", "introspect", "console", target],
                          input=text, capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=str(REPO), env=cli_env(**env))


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tcp_target(proc: AgentProcess) -> str:
    def address() -> str | None:
        if proc.proc.poll() is not None:
            raise AssertionError(f"host exited: {''.join(proc.stderr)[-2000:]}")
        ann = next((a for a in discovery.list_agents() if a.pid == proc.pid), None)
        return ann.tcp if ann else None

    return wait_until(address, message="the agent's TCP address")


__all__ = ["AgentProcess", "wait_until"]
