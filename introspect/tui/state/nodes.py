"""The nodes the TUI can switch to: local agents (`introspect ps`) and the targets file."""

from __future__ import annotations

from dataclasses import dataclass

from introspect.client.targets_file import load_targets, targets_path
from introspect.errors import UserError
from introspect.protocol import discovery


@dataclass(frozen=True)
class NodeEntry:
    target: str  # what `resolve_target` accepts
    source: str  # "local" | "targets file"
    description: str
    pid: int | None = None
    started_at: float | None = None


def list_nodes() -> tuple[list[NodeEntry], str | None]:
    """All known nodes, and a problem to show (a broken targets file) if any."""
    nodes = [NodeEntry(target=str(a.pid), source="local", description=" ".join(a.command or a.argv),
                       pid=a.pid, started_at=a.started_at)
             for a in discovery.list_agents()]
    problem = None
    try:
        for name, entry in sorted(load_targets().items()):
            nodes.append(NodeEntry(target=name, source="targets file",
                                   description=str(entry.get("address", ""))))
    except UserError as exc:
        problem = str(exc)
    return nodes, problem


def targets_file_hint() -> str:
    return str(targets_path())
