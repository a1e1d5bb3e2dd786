"""The README is a contract for the test and dashboard engineers: keep it true."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from introspect.demo.service import DemoService

README = (Path(__file__).resolve().parents[2] / "introspect" / "demo" / "README.md").read_text()


def test_every_phase_line_is_in_the_timeline() -> None:
    for phase in DemoService().phases():
        assert f"`demo: {phase.story}: {phase.message}`" in README


def test_every_documented_kind_is_a_coroutine_function_of_that_name() -> None:
    table = README[README.index("Task **kinds**") : README.index("Functions that show")]
    kinds = re.findall(r"^\| `(introspect\.demo\.[\w.]+)` \|", table, flags=re.MULTILINE)
    assert "introspect.demo.comments.comments_worker" in kinds
    for kind in kinds:
        module_name, _, qualname = kind.rpartition(".")
        function = getattr(importlib.import_module(module_name), qualname)
        assert inspect.iscoroutinefunction(function), kind
        assert f"{function.__module__}.{function.__qualname__}" == kind


def test_documented_creation_sites_are_exact() -> None:
    root = Path(__file__).resolve().parents[2]
    sites = re.findall(r"`(introspect/demo/\w+\.py):(\d+)`", README)
    assert len(sites) >= 5
    for path, line in sites:
        source = (root / path).read_text().splitlines()[int(line) - 1]
        assert re.search(r"asyncio\.(Queue|Lock|Event)\(", source), f"{path}:{line}: {source}"


def test_every_documented_name_exists() -> None:
    for name in set(re.findall(r"`(introspect\.demo\.\w+\.\w+)", README)):
        module_name, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module_name), attribute), name
