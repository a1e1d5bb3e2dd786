"""One live demo agent for the module's pilot tests (starting it costs ~1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.procs import AgentProcess
from tests.tui.support import demo_process


@pytest.fixture(scope="module")
def demo() -> Iterator[AgentProcess]:
    with demo_process() as proc:
        proc.wait_for_agent()
        yield proc
