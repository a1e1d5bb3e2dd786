"""The lint framework: small pluggable objects with `check` / `describe` (tokio-console's
`warnings.rs` shape), each can be disabled, every finding is counted and shown as an event.

Two ways a lint learns about the world:
- event lints are fed by a detector (`LintRegistry.observe(name, ...)`, e.g. a blocking call);
- periodic lints are polled by the watchdog thread about once a second (`check(agent, now)`).
Checks run on the watchdog thread: they read only what is safe to read from another thread
(counters, deque lengths, copies made under the GIL) and never wait on the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from introspect.agent import host_log
from introspect.agent.late_imports import late_import

log = logging.getLogger("introspect.agent")
MAX_SUBJECTS = 1000  # rate-limit memory per registry; oldest subjects are forgotten first


@dataclass
class Finding:
    subject: str  # what the finding is about (a kind, a queue, a task): the rate-limit key
    message: str  # one line for a human
    details: dict[str, Any] = field(default_factory=dict)


class Lint:
    """Base class. Subclasses set `name`, `summary`, and implement `check` (periodic) and/or
    `feed` (fed by a detector). `repeat_after`: seconds before the same subject is reported
    again."""

    name = "lint"
    summary = ""
    periodic = False
    repeat_after = 300.0

    def __init__(self) -> None:
        self.enabled = True

    def describe(self) -> str:
        return f"{self.name}: {self.summary}"

    def install(self, agent: Any, registry: LintRegistry) -> None:
        """Hook whatever the lint needs (called once, from `LintRegistry.install`)."""

    def uninstall(self) -> None:
        """Undo `install`."""

    def check(self, agent: Any, now: float) -> list[Finding]:
        """Periodic lints: look at the agent's state, return new findings."""
        return []

    def feed(self, **facts: Any) -> list[Finding]:
        """Event lints: turn one detector observation into findings."""
        return []


class LintRegistry:
    """All lints of one agent. Exposed as `agent.blocking.lints`."""

    def __init__(self, agent: Any, lints: list[Lint]) -> None:
        self.agent = agent
        self.lints: dict[str, Lint] = {lint.name: lint for lint in lints}
        self._counts: dict[str, int] = {name: 0 for name in self.lints}
        self._last_reported: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    # --- configuration ---------------------------------------------------------------------
    def get(self, name: str) -> Lint:
        try:
            return self.lints[name]
        except KeyError:
            raise KeyError(f"unknown lint {name!r}; known: {', '.join(self.lints)}") from None

    def disable(self, name: str) -> None:
        self.get(name).enabled = False

    def enable(self, name: str) -> None:
        self.get(name).enabled = True

    def configure(self, spec: str) -> None:
        """`INTROSPECT_LINTS`: comma-separated `-name` (disable), `+name` (enable),
        `name.setting=number` (e.g. `task_kind_leak.window=600`). UserError if wrong."""
        from introspect.errors import UserError

        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                if item[0] in "+-":
                    lint = self.get(item[1:])
                    lint.enabled = item[0] == "+"
                    continue
                target, _, raw = item.partition("=")
                name, _, setting = target.partition(".")
                lint = self.get(name)
                current = getattr(type(lint), setting, None)
                if not setting or setting.startswith("_") or not isinstance(
                        current, int | float) or isinstance(current, bool):
                    raise KeyError(f"lint {name} has no numeric setting {setting!r}")
                setattr(lint, setting, type(current)(float(raw)) if isinstance(current, int)
                        else float(raw))
            except (KeyError, ValueError) as exc:
                msg = exc.args[0] if isinstance(exc, KeyError) else str(exc)
                raise UserError(f"INTROSPECT_LINTS: {item!r}: {msg}") from None

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": lint.name, "enabled": lint.enabled, "summary": lint.summary,
                 "count": self._counts.get(lint.name, 0)} for lint in self.lints.values()]

    # --- lifecycle ---------------------------------------------------------------------------
    def install(self) -> None:
        for lint in self.lints.values():
            try:
                lint.install(self.agent, self)
            except Exception as exc:
                self.agent.collector_errors.record(f"lint:{lint.name}", exc)

    def uninstall(self) -> None:
        for lint in self.lints.values():
            try:
                lint.uninstall()
            except Exception as exc:
                self.agent.collector_errors.record(f"lint:{lint.name}", exc)

    # --- running -------------------------------------------------------------------------------
    def observe(self, name: str, **facts: Any) -> None:
        """A detector saw something: let lint `name` decide whether it is a finding."""
        lint = self.lints.get(name)
        if lint is None or not lint.enabled:
            return
        try:
            findings = lint.feed(**facts)
        except Exception as exc:
            self.agent.collector_errors.record(f"lint:{name}", exc)
            return
        for finding in findings:
            self.emit(lint, finding)

    def run_periodic(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for lint in list(self.lints.values()):
            if not (lint.periodic and lint.enabled):
                continue
            try:
                findings = lint.check(self.agent, now)
            except Exception as exc:
                self.agent.collector_errors.record(f"lint:{lint.name}", exc)
                continue
            for finding in findings:
                self.emit(lint, finding)

    def emit(self, lint: Lint, finding: Finding) -> bool:
        """Count and show one finding, unless the same subject was reported recently."""
        key = (lint.name, finding.subject)
        now = time.monotonic()
        with self._lock:
            last = self._last_reported.get(key)
            if last is not None and now - last < lint.repeat_after:
                return False
            self._last_reported[key] = now
            if len(self._last_reported) > MAX_SUBJECTS:
                del self._last_reported[next(iter(self._last_reported))]
            self._counts[lint.name] = self._counts.get(lint.name, 0) + 1
        # here, not at start: msgspec and the event structs are ~2,300 objects the host's GC
        # would walk in a process that never has a finding
        msgspec = late_import("msgspec")
        any_event = late_import("introspect.protocol.snapshot").AnyEvent
        try:  # the event's type checks the details: a lint naming an unknown one is a bug
            event = msgspec.convert(
                {"time": time.time(), "kind": "lint", "lint": lint.name,
                 "subject": finding.subject, "message": finding.message,
                 **msgspec.to_builtins(finding.details)}, any_event)
        except msgspec.ValidationError as exc:
            self.agent.collector_errors.record(f"lint:{lint.name}", exc)
            return False
        self.agent.events.add(event)
        where = str(finding.details.get("location") or finding.subject)
        host_log.report(self.agent, log, (f"lint {lint.name}", where), "introspect lint %s: %s",
                        lint.name, finding.message)
        return True

    def counts(self) -> dict[str, int]:
        """Findings per lint since start (every lint listed, 0 included)."""
        with self._lock:
            return dict(self._counts)
