"""The update stream as full state, and a link that survives restarts — what the TUI and
`introspect record` stream through.

`SnapshotAssembler` turns the agent's stream (a full snapshot, then changed sections only)
into a complete `Snapshot` per update.

`watch()` subscribes and stays subscribed: it yields `Connected`, then a `Tick` per update,
and on a lost link `Disconnected(reason, backoff)` before each new attempt, with exponential
backoff (tokio-console's Connected | Disconnected(backoff) model):

    async for event in watch("unix:/run/app.sock", interval=1.0):
        match event:
            case Connected(): ...
            case Tick(snapshot=snap): ...
            case Disconnected(reason=why, backoff=wait): ...
            case TargetGone(): ...      # a PID target whose process is gone: the end

Refusals that retrying can't fix (wrong or missing token, incompatible protocol, forbidden)
raise their one-line error instead, and so does a failed first connection unless
`retry_first` (a typo'd target must not look like an outage).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from introspect.client.aio import AsyncClient
from introspect.client.errors import is_final
from introspect.client.target import Target, resolve_target
from introspect.errors import UserError
from introspect.protocol import discovery
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot

_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(Snapshot)}


class StreamGap(Exception):
    """A changed-only update arrived before any full snapshot (a protocol violation)."""


class SnapshotAssembler:
    """Applies Updates in order; `snapshot` is the latest full state."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.seq: int | None = None
        self.dropped = 0  # updates the agent skipped for us (we were slow)

    def apply(self, update: m.Update) -> Snapshot:
        if update.full:
            if update.snapshot is None:
                raise StreamGap("full update without a snapshot")
            snap = update.snapshot
        else:
            if self.snapshot is None:
                raise StreamGap("changed-only update before the first full snapshot")
            changes: dict[str, Any] = {}
            for name, value in (update.changed or {}).items():
                kind = _FIELD_TYPES.get(name)
                if kind is None:
                    continue  # a section a newer agent added: ignore, don't fail
                changes[name] = msgspec.msgpack.decode(value, type=kind)
            changes["time"] = update.time
            snap = msgspec.structs.replace(self.snapshot, **changes)
        self.snapshot, self.seq, self.dropped = snap, update.seq, update.dropped
        return snap


@dataclass(frozen=True)
class Connected:
    target: str
    agent_pid: int | None
    role: str | None


@dataclass(frozen=True)
class Disconnected:
    target: str
    reason: str
    backoff: float  # seconds until the next attempt
    attempt: int  # consecutive failed attempts so far


@dataclass(frozen=True)
class Tick:
    snapshot: Snapshot
    update: m.Update


@dataclass(frozen=True)
class TargetGone:
    target: str
    pid: int


StreamEvent = Connected | Disconnected | Tick | TargetGone


class Backoff:
    """Exponential backoff with jitter: `initial`, ×`factor` per failure, at most `maximum`;
    a successful connection resets it."""

    def __init__(self, initial: float = 0.2, factor: float = 2.0, maximum: float = 5.0,
                 jitter: float = 0.1) -> None:
        self.initial, self.factor, self.maximum, self.jitter = initial, factor, maximum, jitter
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * self.factor ** self.attempt)
        self.attempt += 1
        return delay * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else delay

    def reset(self) -> None:
        self.attempt = 0


def process_gone(pid: int) -> bool:
    """The process has exited (an exited child not reaped yet still answers kill(pid, 0))."""
    if not discovery.pid_alive(pid):
        return True
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


async def watch(target: Target | str, token: str | None = None, interval: float = 1.0,
                top_tasks: int = 20, backoff: Backoff | None = None,
                timeout: float = 5.0, name: str = "introspect-stream",
                retry_first: bool = True,
                sleep: Callable[[float], Any] = asyncio.sleep) -> AsyncIterator[StreamEvent]:
    """Subscribe to `target` and keep subscribed across disconnections (see module doc)."""
    resolved = resolve_target(target) if isinstance(target, str) else target
    backoff = backoff or Backoff()
    ever_connected = False
    while True:
        client = AsyncClient(resolved, token=token, timeout=timeout, name=name)
        reason = ""
        try:
            await client.connect()
            ever_connected = True
            backoff.reset()
            yield Connected(str(resolved), client.agent_pid, client.role)
            assembler = SnapshotAssembler()
            async for update in client.subscribe(interval=interval, top_tasks=top_tasks):
                yield Tick(assembler.apply(update), update)
        except UserError as exc:
            if is_final(exc) or not (ever_connected or retry_first):
                raise
            reason = str(exc)
        except StreamGap as exc:
            reason = f"{resolved}: {exc}"
        except msgspec.ValidationError as exc:  # a changed section that does not convert
            reason = f"{resolved}: unreadable update ({exc})"
        finally:
            await client.close()
        if resolved.pid is not None and process_gone(resolved.pid):
            yield TargetGone(str(resolved), resolved.pid)
            return
        delay = backoff.next()
        yield Disconnected(str(resolved), reason or f"{resolved}: disconnected", delay,
                           backoff.attempt)
        await sleep(delay)
