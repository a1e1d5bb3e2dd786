"""Run `introspect dump` for real against real processes. (A module of its own, not conftest:
the suite has several conftest modules.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def introspect_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("INTROSPECT_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "introspect", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=str(REPO), env=env)


def dump_json(target: str, *extra: str) -> dict[str, Any]:
    done = introspect_cli("dump", target, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
