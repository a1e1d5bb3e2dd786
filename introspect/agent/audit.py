"""The audit trail: every control action and every failed authentication, who/where/what/when.

Lines go to the `introspect.audit` logger (the app's logging config decides where), to an
optional file (`INTROSPECT_AUDIT_LOG`), and are counted by (action, outcome) in `counts` for
the metrics (`introspect_agent_audit_total{action,outcome}`). Lines are JSON with every
non-ASCII and control character escaped, and each value bounded: a hostile client name or
request can neither rewrite a terminal that tails the log nor grow it without bound.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

audit_log = logging.getLogger("introspect.audit")
# The app's logging config decides where audit lines go; with none, they must not appear on
# the app's stderr through logging's last-resort handler.
audit_log.addHandler(logging.NullHandler())
MAX_VALUE_CHARS = 300
MAX_KEYS = 64  # distinct (action, outcome) pairs counted; the set is fixed by our code anyway


def _bounded(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


class Audit:
    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.counts: dict[tuple[str, str], int] = {}  # (action, outcome) → n
        self._lock = threading.Lock()

    def record(self, action: str, outcome: str, peer: str, role: str | None = None,
               **detail: Any) -> None:
        entry = {"time": time.time(), "action": action, "outcome": outcome, "peer": peer,
                 "role": role, **{k: _bounded(v) for k, v in detail.items()}}
        line = json.dumps(entry, default=str, ensure_ascii=True)
        with self._lock:
            key = (action, outcome)
            if key in self.counts or len(self.counts) < MAX_KEYS:
                self.counts[key] = self.counts.get(key, 0) + 1
            if self.path:
                try:
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.write(line + "\n")
                except OSError:
                    pass
        level = logging.WARNING if outcome != "ok" else logging.INFO
        audit_log.log(level, "introspect audit %s", line)

    def snapshot_counts(self) -> dict[tuple[str, str], int]:
        """A copy, safe to iterate from another thread (the metrics exporter)."""
        with self._lock:
            return dict(self.counts)
