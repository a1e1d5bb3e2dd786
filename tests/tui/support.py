"""Helpers for the TUI tests: real agent processes, screen text, polling inside the pilot."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from tests.support.procs import AgentProcess

HERE = Path(__file__).parent
FIXTURE_APP = HERE / "fixture_app.py"
RECORDING = HERE / "fixtures" / "session.rec"
DEADLINE = 20.0


def fixture_process(seconds: float = 3600, bulk: int = 0) -> AgentProcess:
    return AgentProcess([sys.executable, "-m", "introspect", "run", "--", sys.executable,
                         str(FIXTURE_APP), str(seconds)],
                        env={"FIXTURE_BULK_TASKS": str(bulk)})


def demo_process() -> AgentProcess:
    """The demo at speed 10 (a story cycle every 6 s), with its Prometheus endpoint on."""
    return AgentProcess([sys.executable, "-m", "introspect", "run", "--", sys.executable, "-m",
                         "introspect.demo", "--speed", "10", "--quiet"],
                        env={"INTROSPECT_METRICS_PORT": "0"})


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain text (the top screen, modal or not)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


async def poll(pilot: Pilot[Any], predicate: Callable[[], Any], message: str,
               timeout: float = DEADLINE) -> Any:
    """Poll inside the app's loop (the pilot keeps the app running) until truthy."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}"
                                 + (f" (last error: {last!r})" if last else "")
                                 + f"\n--- screen ---\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


async def poll_text(pilot: Pilot[Any], needle: str, timeout: float = DEADLINE) -> str:
    return await poll(pilot, lambda: needle in screen_text(pilot.app) and
                      screen_text(pilot.app), f"{needle!r} on screen", timeout)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
