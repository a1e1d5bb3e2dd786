"""Suite-wide: every test run gets its own agent runtime dir, so `ps` and sockets of one run
never mix with another's (or with agents the developer has running), removed after the run;
every process the run starts dies with it (tests/support/lifeline.py); SIGTERM stops the run
as Ctrl-C does, so the fixtures' teardown runs."""

from __future__ import annotations

import os
import signal
import tempfile
from types import FrameType
from typing import Any

import pytest

from tests.support import lifeline

_RUNTIME = tempfile.mkdtemp(prefix="introspect-test-rt-")
os.chmod(_RUNTIME, 0o700)
os.environ["INTROSPECT_RUNTIME_DIR"] = _RUNTIME
# before any fixture or test module can start a process; the directory goes when the run and
# its processes are gone (parallel runs each have and remove their own)
lifeline.hold(_RUNTIME)


@pytest.fixture
def runtime_dir() -> str:
    return _RUNTIME


# The cross-version subset (`make test-cross`, run on CPython 3.12, 3.13 and 3.14 after the
# whole suite on the host's Python): everything that leans on asyncio internals or the
# interpreter's version — task counts and eager tasks, the running task, blocking blame, busy
# time, exact accounting and its C accelerators, dumps and the await graph, the loop hooks,
# host safety, the imports made after start, the tasks' creation sites. No Prometheus server.
CROSS_VERSION = (
    "tests/agent/test_ground_truth.py",
    "tests/agent/test_host_safety.py",
    "tests/agent/test_blocked_loop.py",
    "tests/agent/test_late_start.py",
    "tests/agent/test_task_filters.py",
    "tests/agent/test_versions.py",
    "tests/agent/test_await_graph.py",
    "tests/agent/test_agent_parts.py",
    "tests/agent/test_blocking.py",
    "tests/agent/test_busy.py",
    "tests/agent/test_held_time.py",
    "tests/agent/test_queue_owners.py",
    "tests/agent/test_exact_accounting.py",
    "tests/agent/test_lints.py",
    "tests/agent/test_over_the_wire.py",
    "tests/agent/test_uvloop.py",
    "tests/agent/test_task_path.py",
    "tests/agent/test_task_counts.py",
    "tests/agent/test_watchdog_wait.py",
    "tests/agent/test_duties_on_loop.py",
    "tests/agent/test_gil_handoff.py",
    "tests/agent/test_first_client.py",  # lazy imports and fork: import locks differ by version
    "tests/agent/test_permanent.py",  # the settled list: the collector's lists differ by version
    "tests/agent/test_gc_pauses.py",
    "tests/cli/test_dump.py",
    "tests/cli/test_dump_await_graph.py",
    "tests/security/test_console_runaway.py",
    "tests/cli/test_exact_cmd.py",
)


_sigterm_before: Any = signal.SIG_DFL


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM (like a second Ctrl-C) kills at once; the lifeline still cleans up.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "crossversion: run on every supported CPython "
                            "(tests/conftest.py CROSS_VERSION)")
    global _sigterm_before
    _sigterm_before = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


def pytest_unconfigure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _sigterm_before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(CROSS_VERSION):
            item.add_marker(pytest.mark.crossversion)
