"""The audit trail: every control action and every failed authentication, who/where/what/when.

Lines go to the `introspect.audit` logger (the app's logging config decides where), to an
optional file (`INTROSPECT_AUDIT_LOG`), and are counted by (action, outcome) in `counts` for
the metrics (`introspect_agent_audit_total{action,outcome}`). Lines are JSON with every
non-ASCII and control character escaped, and each value bounded: a hostile client name or
request can neither rewrite a terminal that tails the log nor grow it without bound. What must
be audited whole (console input) goes through `record_text`: long text in sequenced chunks,
each with the SHA-256 of the whole, so no code runs unlogged past a cut.

The file is private: created 0600 without following symlinks; a symlink or a file of another
owner at that path is refused (said once on the agent's log), never written through.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from typing import Any

from introspect.agent.late_imports import late_import
from introspect.textsafe import escape

audit_log = logging.getLogger("introspect.audit")
# The app's logging config decides where audit lines go; with none, they must not appear on
# the app's stderr through logging's last-resort handler.
audit_log.addHandler(logging.NullHandler())
log = logging.getLogger("introspect.agent")
MAX_VALUE_CHARS = 300
TEXT_CHUNK_CHARS = 256  # record_text: chunk size of long text (under MAX_VALUE_CHARS)
MAX_KEYS = 64  # distinct (action, outcome) pairs counted; the set is fixed by our code anyway


def _bounded(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = value
    else:
        text = late_import("json").dumps(value, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


class Audit:
    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.counts: dict[tuple[str, str], int] = {}  # (action, outcome) → n
        self._lock = threading.Lock()
        self._file_refused = False  # said once; lines still go to the logger

    def record(self, action: str, outcome: str, peer: str, role: str | None = None,
               **detail: Any) -> None:
        """One audit line (a successful login: `record("authenticate", "ok", peer, role)`)."""
        entry = {"time": time.time(), "action": action, "outcome": outcome, "peer": peer,
                 "role": role, **{k: _bounded(v) for k, v in detail.items()}}
        # json and hashlib at the first audit line: the agent's server is made at start, but
        # most services are never attached to (their modules are ~250 objects for the GC)
        line = late_import("json").dumps(entry, default=str, ensure_ascii=True)
        with self._lock:
            key = (action, outcome)
            if key in self.counts or len(self.counts) < MAX_KEYS:
                self.counts[key] = self.counts.get(key, 0) + 1
            if self.path:
                self._append(line + "\n")
        level = logging.WARNING if outcome != "ok" else logging.INFO
        audit_log.log(level, "introspect audit %s", line)

    def record_text(self, action: str, outcome: str, peer: str, role: str | None, field: str,
                    text: str, **detail: Any) -> None:
        """Audit `text` whole under `field`: one line if short, else chunks with `part`
        ("i/n"), `chars` and `sha256` of the whole text (a reader can check nothing is
        missing)."""
        if len(text) <= MAX_VALUE_CHARS:
            self.record(action, outcome, peer, role, **{field: text}, **detail)
            return
        digest = late_import("hashlib").sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        count = -(-len(text) // TEXT_CHUNK_CHARS)
        for index in range(count):
            chunk = text[index * TEXT_CHUNK_CHARS:(index + 1) * TEXT_CHUNK_CHARS]
            self.record(action, outcome, peer, role, **{field: chunk}, part=f"{index + 1}/{count}",
                        chars=len(text), sha256=digest, **detail)

    def _append(self, text: str) -> None:
        """Append to the file: created 0600, never through a symlink, never another's file."""
        assert self.path is not None
        try:
            # O_NONBLOCK: a FIFO planted there fails at once instead of hanging the agent
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            reason = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            self._refuse(reason or str(exc))
            return
        try:
            info = os.fstat(fd)
            if info.st_uid != os.getuid():
                self._refuse(f"it belongs to uid {info.st_uid}")
                return
            if not stat.S_ISREG(info.st_mode):
                self._refuse("it is not a regular file")
                return
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.fchmod(fd, 0o600)  # console lines may hold secrets
            os.write(fd, text.encode("utf-8"))
        except OSError as exc:
            self._refuse(exc.strerror or str(exc))
        finally:
            os.close(fd)

    def _refuse(self, reason: str) -> None:
        if not self._file_refused:
            self._file_refused = True
            log.warning("introspect: not writing the audit log to %s: %s (audit lines still "
                        "go to the introspect.audit logger)", escape(self.path, None),
                        escape(reason))

    def snapshot_counts(self) -> dict[tuple[str, str], int]:
        """A copy, safe to iterate from another thread (the metrics exporter)."""
        with self._lock:
            return dict(self.counts)
