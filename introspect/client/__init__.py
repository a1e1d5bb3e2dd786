"""Client library used by the CLI and the TUI: resolve a target, connect, typed requests, and
an update stream that survives restarts (`stream.watch`)."""

from introspect.client.connection import AsyncClient, Client, connect
from introspect.client.stream import (
    Backoff,
    Connected,
    Disconnected,
    SnapshotAssembler,
    Tick,
    watch,
)
from introspect.client.target import Target, resolve_target

__all__ = ["AsyncClient", "Backoff", "Client", "Connected", "Disconnected", "SnapshotAssembler",
           "Target", "Tick", "connect", "resolve_target", "watch"]
