"""OTLP: a real program under `introspect run --otlp` exports to a tiny receiver that decodes the
real protobuf (opentelemetry-proto); names, units and resource match the catalog. An unreachable
endpoint never blocks or crashes the app."""

from __future__ import annotations

import os
import signal
import socket

from introspect.metrics.catalog import OTEL
from tests.metrics.support import AgentProcess, OtlpReceiver, point_attributes, wait_until

APP = """
import asyncio, itertools, os

async def ticker():
    for n in itertools.count():
        if n == int(os.environ.get("TICKS", "-1")):
            print("done", flush=True)
            return
        print(f"tick {n}", flush=True)
        await asyncio.sleep(0.05)

async def main():
    queue = asyncio.Queue(maxsize=7)
    queue.put_nowait("x")
    await asyncio.gather(ticker())

asyncio.run(main())
"""


def _env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "200",
            **extra}


def test_otlp_export_carries_the_catalog_names_units_and_resource() -> None:
    with OtlpReceiver() as receiver, AgentProcess.script(
            APP, agent_args=["--otlp"], env=_env(receiver.endpoint)) as proc:
        proc.wait_for_line("tick 3")
        catalog = {spec.otel: spec for spec in OTEL}
        # The SDK leaves out instruments without data points (no executor, no audit event,
        # no agent error in this app); every other one must arrive.
        empty_here = {"python.executor.queue_length", "python.executor.workers",
                      "python.executor.max_workers", "python.exceptions",
                      "introspect.agent.errors", "introspect.agent.audit",
                      "python.asyncio.task.busy_time",
                      # its one put may fall between get/put samples: owners are checked
                      # where they are known (tests/metrics/test_queue_owner_metric.py)
                      "python.queue.owner"}
        expected = set(catalog) - empty_here
        got = wait_until(lambda: (m := receiver.metrics()) and expected <= set(m) and m,
                         timeout=20, message=f"every catalog instrument of {sorted(expected)}")
        assert receiver.paths[0] == "/v1/metrics"
        assert set(got) <= set(catalog)
        for name, metric in got.items():
            assert metric.unit == catalog[name].unit, name
        kinds = {point_attributes(p).get("kind"): p.as_int or p.as_double
                 for p in got["python.asyncio.tasks"].sum.data_points}
        assert kinds.get("__main__.ticker") == 1
        # (the exporter's own HTTP pool has a queue.LifoQueue too: look at asyncio's only)
        queue_points = [p for p in got["python.queue.capacity"].gauge.data_points
                        if point_attributes(p)["type"] == "asyncio"]
        assert [p.as_int or p.as_double for p in queue_points] == [7]
        assert set(point_attributes(queue_points[0])) == {"queue", "type"}
        lag = got["python.asyncio.loop.lag"].histogram.data_points[0]
        assert list(lag.explicit_bounds)[:3] == [0.0005, 0.001, 0.0025]
        assert lag.count > 0
        gc_points = got["cpython.gc.collections"].sum.data_points
        assert {point_attributes(p)["cpython.gc.generation"] for p in gc_points} == {
            "0", "1", "2"}
        resource = receiver.resource()
        assert resource["service.name"] == "app"  # the program's name: app.py
        assert resource["process.pid"] == proc.pid
        assert len(resource["service.instance.id"]) == 36


FORKING_APP = """
import asyncio, os, sys

async def ticker(who):
    for n in range(10_000):
        print(f"{who} tick {n}", flush=True)
        await asyncio.sleep(0.05)

pid = os.fork()
if pid == 0:
    print(f"worker {os.getpid()}", flush=True)
    asyncio.run(ticker("worker"))
    os._exit(0)
asyncio.run(ticker("master"))
"""


def test_a_forked_worker_exports_its_own_stream() -> None:
    """gunicorn forks its workers: each exports with its own process.pid and instance id, and
    the parent's service.name, while the parent goes on exporting its own."""
    with OtlpReceiver() as receiver, AgentProcess.script(
            FORKING_APP, agent_args=["--otlp"], env=_env(receiver.endpoint)) as proc:
        worker = int(proc.wait_for_line("worker ").split()[1])
        try:
            def both() -> list[dict] | None:
                seen = {r.get("process.pid"): r for r in receiver.resources()}
                return [seen[proc.pid], seen[worker]] if {proc.pid, worker} <= set(seen) else None

            master_res, worker_res = wait_until(both, timeout=20,
                                                message="both processes' streams")
            assert worker_res["service.name"] == master_res["service.name"] == "app"
            assert worker_res["service.instance.id"] != master_res["service.instance.id"]
        finally:
            os.kill(worker, signal.SIGKILL)


def test_otel_service_name_wins() -> None:
    with OtlpReceiver() as receiver, AgentProcess.script(
            APP, agent_args=["--otlp"],
            env=_env(receiver.endpoint, OTEL_SERVICE_NAME="checkout")) as proc:
        proc.wait_for_line("tick 1")
        wait_until(lambda: receiver.resource().get("service.name") == "checkout", timeout=20,
                   message="service.name from OTEL_SERVICE_NAME")


def test_unreachable_endpoint_never_blocks_the_app() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with AgentProcess.script(APP, agent_args=["--otlp"], env=_env(
                dead, OTEL_EXPORTER_OTLP_TIMEOUT="1", TICKS="60")) as proc:
            proc.wait_for_line("tick 5")
            # exports fail every 200 ms, retried with back-off on the exporter's thread; the
            # app's own output keeps advancing at its pace
            proc.wait_for_line("done", timeout=20)
            # and it exits by itself, promptly: the agent's shutdown (atexit) waits for the
            # exporter at most 2 s
            wait_until(lambda: proc.proc.poll() is not None, timeout=10,
                       message="the app's exit despite a dead OTLP endpoint")
            assert proc.proc.returncode == 0, "".join(proc.stderr)[-2000:]
            assert "Traceback" not in "".join(proc.stderr)


# Collections every few allocations: some start inside the SDK's export, on its thread, while
# it collects the GC pause histogram under that histogram's lock.
GC_EVERYWHERE = """
import asyncio, gc, itertools

gc.set_threshold(10, 1000, 1000)

async def main():
    for n in itertools.count():
        print(f"tick {n}", flush=True)
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


def test_collections_during_an_export_never_deadlock_it() -> None:
    """GC pauses are recorded outside the gc callback: a pause recorded from inside the SDK's
    own collection of that histogram deadlocked the exporter thread (and the next collection
    on the app's thread would wait for its lock forever)."""
    with OtlpReceiver() as receiver, AgentProcess.script(
            GC_EVERYWHERE, agent_args=["--otlp"], env=_env(receiver.endpoint)) as proc:
        proc.wait_for_line("tick 1")
        wait_until(lambda: len(receiver.requests) >= 15, timeout=30,
                   message="15 exports (one per 0.2 s)")
        ticks = len(proc.stdout)
        wait_until(lambda: len(proc.stdout) > ticks + 10, message="the program still running")
        pauses = receiver.metrics()["python.gc.pause.duration"].histogram.data_points
        assert sum(p.count for p in pauses) > 0
