"""Dashboards and alert rules: shared fixtures, and the `needs_exporter` gate.

Tests marked `needs_exporter` run the demo service with its Prometheus exporter. They are
deselected (not skipped) while `introspect.metrics.prometheus` does not exist yet.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `dashboards` and `tests.support` live at the top of the repo
    sys.path.insert(0, str(REPO))

NEEDS_EXPORTER_REASON = (
    "needs_exporter tests deselected: introspect.metrics.prometheus (the Prometheus exporter) "
    "does not exist yet"
)


def exporter_available() -> bool:
    try:
        return importlib.util.find_spec("introspect.metrics.prometheus") is not None
    except ModuleNotFoundError:  # the parent package introspect.metrics is missing too
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_exporter: runs the demo service's Prometheus exporter end to end"
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    return None if exporter_available() else NEEDS_EXPORTER_REASON


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if exporter_available():
        return
    deselected = [item for item in items if item.get_closest_marker("needs_exporter")]
    if not deselected:
        return
    items[:] = [item for item in items if not item.get_closest_marker("needs_exporter")]
    config.hook.pytest_deselected(items=deselected)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    message = f"{NEEDS_EXPORTER_REASON}: {len(deselected)} test(s)"
    if reporter is not None:
        reporter.write_line(message, yellow=True)
    else:
        print(message)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
