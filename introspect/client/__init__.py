"""Client library used by the CLI, the TUI and the recorder: resolve a target, connect
(`Client` blocking, `AsyncClient` asyncio — one handshake, one request table, one error
vocabulary), and an update stream that survives restarts (`stream.watch`)."""

from introspect.client.aio import AsyncClient
from introspect.client.connection import Client
from introspect.client.errors import AgentError, IncompatibleAgent
from introspect.client.handshake import Handshake
from introspect.client.requests import Call
from introspect.client.stream import (
    Backoff,
    Connected,
    Disconnected,
    SnapshotAssembler,
    TargetGone,
    Tick,
    watch,
)
from introspect.client.target import Target, resolve_target

__all__ = ["AgentError", "AsyncClient", "Backoff", "Call", "Client", "Connected",
           "Disconnected", "Handshake", "IncompatibleAgent", "SnapshotAssembler", "Target",
           "TargetGone", "Tick", "resolve_target", "watch"]
