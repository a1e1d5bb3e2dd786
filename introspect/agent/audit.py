"""The audit trail: every control action and every failed authentication, who/where/what/when.

Lines go to the `introspect.audit` logger (the app's logging config decides where), to an
optional file (`INTROSPECT_AUDIT_LOG`), and are counted by outcome for the metrics.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

audit_log = logging.getLogger("introspect.audit")


class Audit:
    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.counts: dict[tuple[str, str], int] = {}  # (action, outcome) → n
        self._lock = threading.Lock()

    def record(self, action: str, outcome: str, peer: str, role: str | None = None,
               **detail: Any) -> None:
        entry = {"time": time.time(), "action": action, "outcome": outcome, "peer": peer,
                 "role": role, **detail}
        line = json.dumps(entry, default=str, ensure_ascii=True)
        with self._lock:
            key = (action, outcome)
            self.counts[key] = self.counts.get(key, 0) + 1
            if self.path:
                try:
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.write(line + "\n")
                except OSError:
                    pass
        level = logging.WARNING if outcome != "ok" else logging.INFO
        audit_log.log(level, "introspect audit %s", line)
