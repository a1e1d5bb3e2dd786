"""Suite-wide: every test run gets its own agent runtime dir, so `ps` and sockets of one run
never mix with another's (or with agents the developer has running)."""

from __future__ import annotations

import os
import tempfile

import pytest

_RUNTIME = tempfile.mkdtemp(prefix="introspect-test-rt-")
os.chmod(_RUNTIME, 0o700)
os.environ["INTROSPECT_RUNTIME_DIR"] = _RUNTIME


@pytest.fixture
def runtime_dir() -> str:
    return _RUNTIME
