"""Where the TUI's data comes from right now: a small state machine shown in the header,
built on the client's stream events (`introspect.client.stream`).

Connecting → Connected ⇄ Disconnected(backoff) → … ; TargetExited is final for a PID target
whose process is gone, Refused for a refusal retrying can't fix (token, protocol, role) or a
first connection that failed. A replay has its own state (Replaying).
"""

from __future__ import annotations

from dataclasses import dataclass

from introspect.client.stream import Backoff

# Slower than the client's default: a person watches this, and a restart takes seconds.
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 10.0


def tui_backoff() -> Backoff:
    return Backoff(initial=BACKOFF_INITIAL, maximum=BACKOFF_MAX, factor=2.0, jitter=0.0)


@dataclass(frozen=True)
class Connecting:
    target: str


@dataclass(frozen=True)
class Connected:
    target: str
    role: str


@dataclass(frozen=True)
class Disconnected:
    target: str
    reason: str
    attempt: int
    retry_in: float


@dataclass(frozen=True)
class TargetExited:
    target: str
    pid: int | None


@dataclass(frozen=True)
class Refused:
    """Final: the stream ended with an error retrying can't fix."""

    target: str
    reason: str
    first_connection: bool  # never connected: `introspect top TARGET` exits with the reason
    exit_code: int


@dataclass(frozen=True)
class Replaying:
    path: str
    index: int
    total: int
    playing: bool
    speed: float
    frame_time: float | None = None  # wall clock (epoch s) of the frame shown, for the header


@dataclass(frozen=True)
class NoTarget:
    pass


ConnectionState = (Connecting | Connected | Disconnected | TargetExited | Refused | Replaying
                   | NoTarget)
