"""Dashboards and alert rules: shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `dashboards` and `tests.support` live at the top of the repo
    sys.path.insert(0, str(REPO))

@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
