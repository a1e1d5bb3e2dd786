"""Where the TUI's data comes from right now: a small state machine shown in the header.

Connecting → Connected ⇄ Disconnected(backoff) → … ; TargetExited is final for a PID target
whose process is gone. A replay has its own state (Replaying).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 10.0
DEFAULT_BACKOFF_FACTOR = 2.0


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
class Replaying:
    path: str
    index: int
    total: int
    playing: bool
    speed: float


@dataclass(frozen=True)
class NoTarget:
    pass


ConnectionState = Connecting | Connected | Disconnected | TargetExited | Replaying | NoTarget


class Backoff:
    """Exponential backoff between reconnect attempts, reset by a successful connection."""

    def __init__(self, initial: float = DEFAULT_BACKOFF_INITIAL,
                 maximum: float = DEFAULT_BACKOFF_MAX,
                 factor: float = DEFAULT_BACKOFF_FACTOR) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * self.factor ** self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
