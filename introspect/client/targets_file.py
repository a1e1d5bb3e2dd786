"""Named remote agents in `~/.config/introspect/targets.toml`:

    [targets.db-host]
    address = "db-host:7070"      # or "tls://db-host:7070"
    token_file = "~/.config/introspect/db-host.token"   # optional
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from introspect.errors import UserError

if TYPE_CHECKING:
    from introspect.client.target import Target


def targets_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(os.environ.get("INTROSPECT_TARGETS_FILE") or Path(base) / "introspect" /
                "targets.toml")


def load_targets() -> dict[str, dict[str, Any]]:
    path = targets_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: {exc}") from None
    targets = data.get("targets", {})
    if not isinstance(targets, dict):
        raise UserError(f"{path}: [targets] must be a table")
    return {str(k): v for k, v in targets.items() if isinstance(v, dict)}


def lookup(name: str) -> Target | None:
    entry = load_targets().get(name)
    if entry is None:
        return None
    from introspect.client.target import resolve_target

    address = str(entry.get("address", ""))
    if not address:
        raise UserError(f"{targets_path()}: target {name!r} has no address")
    return resolve_target(address)


def token_for(name: str) -> str | None:
    entry = load_targets().get(name) or {}
    if entry.get("token_file"):
        from introspect.config import read_token_file

        return read_token_file(os.path.expanduser(str(entry["token_file"])), "token_file")
    return None
