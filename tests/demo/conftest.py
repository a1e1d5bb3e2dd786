"""Fixtures of the demo's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.demo.support import DemoProcess


@pytest.fixture
def demo_process() -> Iterator[Callable[..., DemoProcess]]:
    """Start `python -m introspect.demo ARGS` children; all are killed at the end of the test."""
    started: list[DemoProcess] = []

    def start(*args: str) -> DemoProcess:
        process = DemoProcess(*args)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()
