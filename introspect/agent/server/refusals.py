"""Refusals audited with counts: the first refusal of a kind from a peer is one audit line at
once, the ones after it within WINDOW_SECONDS one more line with their count. A client trying
thousands of tokens a second writes a few lines, not thousands (sshd's "N more" idea)."""

from __future__ import annotations

import asyncio
from typing import Any

from introspect.agent.audit import Audit

WINDOW_SECONDS = 10.0
MAX_KEYS = 1024  # (action, outcome, peer) tracked per window; beyond, peers share "other"


class RefusalLog:
    """Used from the server's loop only."""

    def __init__(self, audit: Audit) -> None:
        self.audit = audit
        self.refused = 0  # every refusal, aggregated or not
        self._repeats: dict[tuple[str, str, str], int] = {}
        self._flush: asyncio.TimerHandle | None = None

    def record(self, action: str, outcome: str, peer_key: str, peer: str,
               **detail: Any) -> None:
        self.refused += 1
        key = (action, outcome, peer_key)
        if key not in self._repeats and len(self._repeats) >= MAX_KEYS:
            key = (action, outcome, "other")
        if key in self._repeats:
            self._repeats[key] += 1
            return
        self._repeats[key] = 0
        self.audit.record(action, outcome, peer, **detail)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(WINDOW_SECONDS, self.flush)

    def flush(self) -> None:
        """One line per (action, outcome, peer) for the refusals not audited one by one."""
        repeats, self._repeats = self._repeats, {}
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for (action, outcome, peer_key), count in repeats.items():
            if count:
                self.audit.record(action, outcome, peer_key, repeated=count,
                                  within_seconds=WINDOW_SECONDS)
