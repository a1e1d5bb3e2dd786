"""The README is a contract for the test and dashboard engineers: keep it true."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
from pathlib import Path

import pytest

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



def kind_of(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    module = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    return f"{module}.{coro.__qualname__}"


async def kinds_seen_during_one_cycle() -> set[str]:
    service = DemoService(speed=20, quiet=True)
    seen: set[str] = set()
    service.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while "demo: cycle: cycle 2 starts" not in service.ctx.narrator.lines:
            assert loop.time() < deadline, "the first cycle did not end"
            seen.update(kind_of(task) for task in asyncio.all_tasks())
            await asyncio.sleep(0.005)
    finally:
        await service.stop()
    return seen


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # intended
def test_every_task_kind_of_a_cycle_is_documented() -> None:
    seen = asyncio.run(kinds_seen_during_one_cycle())
    seen.discard(f"{__name__}.kinds_seen_during_one_cycle")  # this test's own main task
    table = README[README.index("Task **kinds**") : README.index("Functions that show")]
    documented = set(re.findall(r"^\| `(introspect\.demo\.[\w.]+)` \|", table, flags=re.M))
    documented.discard("introspect.demo.service.run_demo")  # the main task of `python -m`
    assert seen <= documented
    # Tasks that end within their first step cannot be caught between steps.
    one_step = {
        "introspect.demo.blocking_calls.slow_report_handler",
        "introspect.demo.unhandled_errors.fire_and_forget_audit",
    }
    assert documented - seen <= one_step
