"""What the agent writes into the host's log (the `introspect.*` loggers, so the host's stderr
unless the app configured logging): few lines, escaped.

A service with a slow endpoint used to get two WARNING lines per blocking call (41 lines for 20
slow requests), and every import of a worker's start-up was reported as a loop block. Now, with
`INTROSPECT_HOST_LOG` (default `summary`):

- `summary[=SECONDS]`: the first report per location is logged; later ones are counted and
  logged as one summary line per interval (default 60 s) with the counts;
- `all`: every report (the old behaviour); `off`: none (events, lints and metrics still count
  everything);
- `,imports` appended: also report loop blocks caused by imports during start-up (the first
  `STARTUP_SECONDS` after the agent started), hidden otherwise.

Everything comes from the observed process (task names, paths, messages): escaped with
`textsafe.escape`, so ESC, OSC 52, BEL or U+202E in a task name never reach a terminal.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from introspect.errors import UserError
from introspect.textsafe import escape

STARTUP_SECONDS = 30.0
DEFAULT_INTERVAL = 60.0
MAX_LOCATIONS = 1000  # distinct keys remembered; beyond, the oldest is forgotten
SUMMARY_ITEMS = 5  # locations named in a summary line (the most frequent)
ARG_LIMIT = 300  # characters of one escaped argument


class HostLogPolicy:
    """Parsed `INTROSPECT_HOST_LOG`."""

    def __init__(self, spec: str = "summary") -> None:
        self.mode = "summary"
        self.interval = DEFAULT_INTERVAL
        self.imports = False
        for part in (p.strip() for p in (spec or "summary").split(",")):
            name, _, value = part.partition("=")
            if name == "imports" and not value:
                self.imports = True
            elif name in ("all", "off") and not value:
                self.mode = name
            elif name == "summary":
                self.mode = "summary"
                if value:
                    try:
                        self.interval = float(value)
                    except ValueError:
                        self.interval = -1.0
                    if not 0 < self.interval <= 86400:
                        raise UserError(f"INTROSPECT_HOST_LOG={spec!r}: summary=SECONDS "
                                        "takes 1-86400 seconds")
            else:
                raise UserError(f"INTROSPECT_HOST_LOG={spec!r}: expected summary[=SECONDS], "
                                "all or off, optionally followed by ,imports")


class HostLog:
    """One per agent (see `for_agent`); thread-safe."""

    def __init__(self, policy: HostLogPolicy, started_at: float) -> None:
        self.policy = policy
        self.started_at = started_at
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], int] = {}  # key → reports since the last summary
        self._summary_due = time.monotonic() + policy.interval
        self._timer: threading.Timer | None = None  # a summary due while no report comes
        self.suppressed_imports = 0

    def report(self, logger: logging.Logger, key: tuple[str, str], message: str,
               *args: Any, event: Any | None = None) -> bool:
        """Log `message % args` (args escaped) unless aggregated away; True when logged."""
        policy = self.policy
        if policy.mode == "off":
            return False
        if not policy.imports and self._is_startup_import(key, event):
            with self._lock:
                self.suppressed_imports += 1
            return False
        safe = tuple(escape(a, ARG_LIMIT) if isinstance(a, str) else a for a in args)
        key = (key[0], escape(key[1], ARG_LIMIT))
        if policy.mode == "all":
            logger.warning(message, *safe)
            return True
        with self._lock:
            first = key not in self._seen
            if first:
                self._seen[key] = 0
                if len(self._seen) > MAX_LOCATIONS:
                    del self._seen[next(iter(self._seen))]
            else:
                self._seen[key] += 1
                self._arm_timer(logger)
            summary = self._take_summary() if time.monotonic() >= self._summary_due else None
        if first:
            logger.warning(message, *safe)
        if summary:
            logger.warning("%s", summary)
        return first

    def _arm_timer(self, logger: logging.Logger) -> None:
        """Under the lock: the summary comes at its time even if no report follows (one
        daemon timer at a time)."""
        if self._timer is not None:
            return
        delay = max(self._summary_due - time.monotonic(), 0.0) + 0.05
        timer = threading.Timer(delay, self._on_timer, args=(logger,))
        timer.daemon = True
        timer.name = "introspect-host-log"
        self._timer = timer
        timer.start()

    def _on_timer(self, logger: logging.Logger) -> None:
        with self._lock:
            self._timer = None
            summary = self._take_summary() if time.monotonic() >= self._summary_due else None
        if summary:
            logger.warning("%s", summary)

    def flush(self, logger: logging.Logger) -> None:
        """The summary of what was counted since the last one (at stop)."""
        with self._lock:
            summary = self._take_summary()
        if summary:
            logger.warning("%s", summary)

    def _take_summary(self) -> str | None:
        """Under the lock: one line naming the most frequent repeats; counters reset."""
        self._summary_due = time.monotonic() + self.policy.interval
        repeated = sorted(((n, k) for k, n in self._seen.items() if n), reverse=True)
        for key in self._seen:
            self._seen[key] = 0
        if not repeated:
            return None
        total = sum(n for n, _ in repeated)
        named = "; ".join(f"{n}× {what} at {where}" for n, (what, where)
                          in repeated[:SUMMARY_ITEMS])
        more = len(repeated) - SUMMARY_ITEMS
        rest = f"; and {more} more locations" if more > 0 else ""
        return (f"introspect: {total} more reports of places already reported in the last "
                f"{self.policy.interval:g}s: {named}{rest} (`introspect top` shows each)")

    def _is_startup_import(self, key: tuple[str, str], event: Any | None) -> bool:
        if time.time() - self.started_at > STARTUP_SECONDS:
            return False
        where = key[1]
        if "<frozen importlib" in where or where.endswith(" <module>"):
            return True
        stack = getattr(event, "stack", None) or ()  # a BlockingEvent's frames
        return any(str(frame.file).startswith("<frozen importlib") for frame in stack)


_LOGS: weakref.WeakKeyDictionary[Any, HostLog] = weakref.WeakKeyDictionary()
_LOGS_LOCK = threading.Lock()


def for_agent(agent: Any) -> HostLog:
    with _LOGS_LOCK:
        host_log = _LOGS.get(agent)
        if host_log is None:
            spec = getattr(getattr(agent, "config", None), "host_log", "summary")
            host_log = HostLog(HostLogPolicy(spec), getattr(agent, "started_at", time.time()))
            _LOGS[agent] = host_log
        return host_log


def report(agent: Any, logger: logging.Logger, key: tuple[str, str], message: str,
           *args: Any, event: Any | None = None) -> bool:
    """The call sites' one line: `host_log.report(agent, log, (what, where), msg, *args)`."""
    try:
        return for_agent(agent).report(logger, key, message, *args, event=event)
    except Exception:  # never into the host
        return False


def flush(agent: Any) -> None:
    """At stop: the summary of what was counted since the last one, if anything was."""
    with _LOGS_LOCK:
        host_log = _LOGS.get(agent)
    if host_log is None:
        return
    try:
        host_log.flush(logging.getLogger("introspect.agent"))
    except Exception:  # never into the host
        pass
