"""The catalog is the single source: what /metrics exposes, the docs table, and the catalog agree.

A real program runs under `introspect run --metrics-port 0`; its real /metrics body is compared
with the catalog family by family, and checked by the real `promtool check metrics`.
"""

from __future__ import annotations

import subprocess

from introspect.metrics import docs
from introspect.metrics.catalog import CATALOG, OTEL
from tests.metrics.support import AgentProcess, families, metrics_url, scrape
from tests.support.procs import wait_until

# Uses every part the catalog describes: tasks of two kinds (one crashes), a bounded queue with
# a blocked putter, a thread pool, an unhandled thread exception.
APP = """
import asyncio, concurrent.futures, threading

async def crasher():
    raise KeyError("boom")

async def idle(event):
    await event.wait()

async def main():
    queue = asyncio.Queue(maxsize=1)
    queue.put_nowait(1)
    putter = asyncio.create_task(queue.put(2))
    event = asyncio.Event()
    idlers = [asyncio.create_task(idle(event)) for _ in range(3)]
    failed = asyncio.create_task(crasher())
    await asyncio.gather(failed, return_exceptions=True)
    pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="catalog-pool")
    pool.submit(lambda: None).result()
    t = threading.Thread(target=lambda: 1 / 0, name="doomed")
    t.start(); t.join()
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_catalog_names_are_unique_and_well_formed() -> None:
    proms = [spec.prom for spec in CATALOG]
    assert len(proms) == len(set(proms))
    otels = [spec.otel for spec in OTEL]
    assert len(otels) == len(set(otels))
    for spec in CATALOG:
        assert (spec.type == "counter") == spec.prom.endswith("_total"), spec.prom
        assert spec.type != "histogram" or spec.buckets or spec.source != "introspect", spec.prom
        if spec.unit == "s":
            assert spec.prom.endswith(("_seconds", "_seconds_total")), spec.prom
        assert len(spec.attributes) == len(spec.labels), spec.prom
        assert spec.help.strip(), spec.prom


def test_docs_table_is_generated_from_the_catalog() -> None:
    text = docs.DOC.read_text()
    assert docs.current_block(text) == docs.table(), (
        "docs/metrics.md is stale: run `python -m introspect.metrics.docs --write`")


def test_real_metrics_body_matches_the_catalog_and_passes_promtool() -> None:
    def crash_counted(url: str) -> str | None:
        body, _ = scrape(url)
        line = 'python_asyncio_tasks_finished_total{kind="__main__.crasher",outcome="error"} 1.0'
        return body if line in body else None

    with AgentProcess.script(APP, agent_args=["--metrics-port", "0"]) as proc:
        proc.wait_for_line("ready")
        url = metrics_url(proc)
        # A task that ends is accounted at the next sweep of young tasks (each loop-probe
        # beat, 0.1 s; docs/metrics.md), not in the instant it ends.
        body = wait_until(lambda: crash_counted(url), timeout=10,
                          message="the crashed task counted")
    exported = set(families(body))
    listed = {spec.family for spec in CATALOG}
    assert exported - listed == set(), "exported but missing from the catalog"
    assert listed - exported == set(), "in the catalog but not exported"

    found = families(body)
    kinds = {s.labels["kind"]: s.value for s in found["python_asyncio_tasks"].samples}
    assert kinds["__main__.idle"] == 3
    finished = {(s.labels["kind"], s.labels["outcome"]): s.value
                for s in found["python_asyncio_tasks_finished"].samples
                if s.name.endswith("_total")}
    assert finished[("__main__.crasher", "error")] == 1
    assert finished[("__main__.crasher", "ok")] == 0  # pre-exported zero
    queue = {s.name: s.value for s in found["python_queue_length"].samples}
    assert list(queue.values()) == [1]
    putters = [s for s in found["python_queue_blocked_putters"].samples]
    assert [s.value for s in putters] == [1] and putters[0].labels["type"] == "asyncio"
    pools = {s.labels["executor"]: s.value for s in found["python_executor_max_workers"].samples}
    assert pools["catalog-pool"] == 2
    errors = {(s.labels["source"], s.labels["type"]): s.value
              for s in found["python_exceptions"].samples if s.name.endswith("_total")}
    assert errors[("thread", "ZeroDivisionError")] == 1
    assert errors[("task", "KeyError")] == 1

    check = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                           capture_output=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        check.stdout + check.stderr)
