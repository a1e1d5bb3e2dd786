"""Fixtures: real target processes for the py-spy tests, always killed."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator

import pytest

from tests.profiling.support import CPU_CHILD, HOSTILE_CHILD, PYSPY, Child


def _python_child(source: str) -> Iterator[Child]:
    child = Child([sys.executable, "-c", source])
    try:
        child.wait_for_line("ready")
        yield child
    finally:
        child.kill()


@pytest.fixture(scope="module")
def cpu_child() -> Iterator[Child]:
    yield from _python_child(CPU_CHILD)


@pytest.fixture
def hostile_child() -> Iterator[Child]:
    yield from _python_child(HOSTILE_CHILD)


@pytest.fixture
def sleep_process() -> Iterator[Child]:
    """A process that is not Python at all."""
    child = Child(["sleep", "3600"])
    try:
        yield child
    finally:
        child.kill()


@pytest.fixture(scope="session", autouse=True)
def _pyspy_present() -> None:
    # CI runs as root with py-spy installed: its absence is a failure, never a silent skip.
    assert PYSPY.is_file() or shutil.which("py-spy"), "py-spy is not installed in this venv"
