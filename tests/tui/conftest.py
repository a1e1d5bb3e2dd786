"""One live demo agent for the module's pilot tests (starting it costs ~1 s); UTC for screens
that show wall-clock times."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.procs import AgentProcess
from tests.tui.support import demo_process


@pytest.fixture(scope="module")
def demo() -> Iterator[AgentProcess]:
    with demo_process() as proc:
        proc.wait_for_agent()
        yield proc


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC: screens showing clock times compare equal on any machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
