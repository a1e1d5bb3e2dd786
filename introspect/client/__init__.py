"""Client library used by the CLI and the TUI: resolve a target, connect, typed requests."""

from introspect.client.connection import AsyncClient, Client, connect
from introspect.client.target import Target, resolve_target

__all__ = ["AsyncClient", "Client", "Target", "connect", "resolve_target"]
