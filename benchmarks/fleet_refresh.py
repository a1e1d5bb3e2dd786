"""The cost of a fleet refresh at N synthetic instances (default 500).

    .venv/bin/python benchmarks/fleet_refresh.py [--instances 500] [--rounds 10] [--presses 5]

1. writes an hour of synthetic agent series (30 s apart; a few instances troubled, three down)
   as OpenMetrics and backfills them with `promtool tsdb create-blocks-from openmetrics`;
2. starts the real Prometheus on that storage with the project's alert rules;
3. measures a refresh (`FleetSource.refresh`, evaluated at the end of the data): HTTP requests,
   wall time with and without the sparklines' range queries, and each query alone (sequential,
   = Prometheus' time plus the loopback round trip) with the size of its answer;
4. key-to-screen in the TUI (Textual pilot, headless; the PaintWatch of tui_100k.py): Down on
   the 500-row table, r (a refresh, Prometheus included), Enter on an unreachable instance
   (its metrics page, 17 PromQL queries).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.tui_100k import PaintWatch, post_keys  # noqa: E402
from dashboards.generate import render_rules  # noqa: E402
from introspect.fleet.api import PrometheusAPI  # noqa: E402
from introspect.fleet.queries import FleetQueries  # noqa: E402
from introspect.fleet.refresh import FleetSource  # noqa: E402
from tests.support.prometheus_server import find_binary, free_port, wait_for  # noqa: E402

STEP = 30  # seconds between synthetic samples
HOUR = 3600
LE = ["0.005", "0.05", "0.25", "1.0", "+Inf"]
KINDS = ["app.handler", "app.worker", "app.poller"]
Series = tuple[str, str, Callable[[float], float]]  # sample name, extra labels, value at age


def instance_series(i: int) -> dict[str, list[Series]]:
    """Family -> series of one instance, values as functions of seconds since the hour began.
    Every 50th instance crash-loops, every 37th has a growing queue, every 23rd a slow loop."""
    crash = 0.2 if i % 50 == 7 else 0.0
    growth = 2.0 if i % 37 == 5 else 0.0
    slow = i % 23 == 3
    rss = 60e6 + (i % 40) * 4e6
    share = [0.8, 0.9, 0.95, 1.0, 1.0] if slow else [0.9, 0.99, 1.0, 1.0, 1.0]
    bucket = [("python_asyncio_loop_lag_seconds_bucket", f',le="{le}"',
               functools.partial(lambda a, s: int(10 * a * s), s=share[j]))
              for j, le in enumerate(LE)]
    return {
        "process_resident_memory_bytes gauge": [
            ("process_resident_memory_bytes", "", lambda a: rss)],
        "python_queue_length gauge": [
            ("python_queue_length", ',queue="inbox"', lambda a: int(growth * a)),
            ("python_queue_length", ',queue="outbox"', lambda a: int(a // STEP) % 3)],
        "python_asyncio_tasks gauge": [
            ("python_asyncio_tasks", f',kind="{k}"', lambda a: 5) for k in KINDS],
        "python_asyncio_tasks_finished counter": [
            ("python_asyncio_tasks_finished_total", f',kind="{k}",outcome="{o}"',
             (lambda a: round(crash * a, 1)) if (k, o) == ("app.worker", "error")
             else (lambda a: 0) if o == "error" else (lambda a: a))
            for k in KINDS for o in ("ok", "error")],
        "python_asyncio_loop_blocked_seconds counter": [
            ("python_asyncio_loop_blocked_seconds_total", "",
             lambda a: round((0.05 if slow else 0.0) * a, 3))],
        "python_asyncio_loop_lag_seconds histogram": [
            *bucket, ("python_asyncio_loop_lag_seconds_count", "", lambda a: 10 * a),
            ("python_asyncio_loop_lag_seconds_sum", "",
             lambda a: round((0.4 if slow else 0.002) * 10 * a, 3))],
    }


def write_openmetrics(path: Path, instances: int, end: int) -> int:
    """One family at a time, each series' samples in time order (what promtool expects); the
    last three instances stop answering 10 minutes before the end (`up` 0 from then on)."""
    begin = end - HOUR
    stamps = range(begin, end + 1, STEP)
    names = [f"host-{i:03d}:9464" for i in range(instances)]
    per_instance = [instance_series(i) for i in range(instances)]
    down_from = {n: end - 600 for n in names[-3:]}
    lines = 0
    with path.open("w") as out:
        out.write("# TYPE up gauge\n")
        for n in names:
            for t in stamps:
                out.write(f'up{{job="synthetic",instance="{n}"}} '
                          f"{0 if t >= down_from.get(n, end + 1) else 1} {t}\n")
                lines += 1
        for family in per_instance[0]:
            name, kind = family.split()
            out.write(f"# TYPE {name} {kind}\n")
            for n, series in zip(names, per_instance, strict=True):
                stop = down_from.get(n, end + 1)
                for sample, labels, value in series[family]:
                    label = f'job="synthetic",instance="{n}"{labels}'
                    for t in stamps:
                        if t < stop:
                            out.write(f"{sample}{{{label}}} {value(t - begin)} {t}\n")
                            lines += 1
        out.write("# EOF\n")
    return lines


def backfill(openmetrics: Path, data: Path) -> float:
    start = time.perf_counter()
    subprocess.run([find_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                    str(openmetrics), str(data)], check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - start


class Prometheus:
    """The real Prometheus on the backfilled storage, with the project's rules."""

    def __init__(self, data: Path, rules: Path) -> None:
        self.port = free_port()
        config = data.parent / "prometheus.yml"
        config.write_text(json.dumps({"global": {"evaluation_interval": "15s"},
                                      "rule_files": [str(rules)], "scrape_configs": []}))
        self.log = (data.parent / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [find_binary(), f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._ready, 120, message="Prometheus ready")

    def _ready(self) -> bool:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
            return resp.status == 200

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def ms(values: list[float]) -> str:
    values = sorted(values)
    return (f"median {statistics.median(values) * 1000:.0f} ms, "
            f"max {values[-1] * 1000:.0f} ms (n={len(values)})")


def refresh_costs(url: str, end: int, rounds: int) -> dict[str, Any]:
    api = PrometheusAPI(url, timeout=60)
    queries = FleetQueries()
    out: dict[str, Any] = {}
    source = FleetSource(api, queries)
    first = source.refresh(now=end)  # cold: with the sparklines' range queries
    out["instances ranked"] = len(first.instances)
    out["down"] = sum(1 for i in first.instances if i.up is False)
    out["requests, first refresh (with range queries, targets)"] = first.requests
    warm, cold = [], []
    for _ in range(rounds):
        report = source.refresh(now=end)
        warm.append(report.seconds)
        out["requests, next refreshes (within the minute)"] = report.requests
        source._spark_at = 0.0  # force the range queries again
        cold.append(source.refresh(now=end).seconds)
    source.close()
    out["refresh wall time, instant queries + alerts (+ targets)"] = ms(warm)
    out["refresh wall time, with the two range queries"] = ms(cold)
    each: dict[str, str] = {}
    for name, promql in queries.instant().items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            result = api.query(promql, at=end)
            times.append(time.perf_counter() - start)
        each[name] = f"{statistics.median(times) * 1000:.0f} ms, {len(result)} series"
    for name, promql in queries.sparklines().items():
        start = time.perf_counter()
        result = api.query_range(promql, end - HOUR, end, 300)
        each[f"range {name}"] = (f"{(time.perf_counter() - start) * 1000:.0f} ms, "
                                 f"{len(result)} series")
    out["each query alone"] = each
    return out


async def key_to_screen(url: str, end: int, presses: int) -> dict[str, list[float]]:
    from textual.widgets import DataTable

    from introspect.tui.fleet_app import FleetApp

    source = FleetSource(PrometheusAPI(url, timeout=60), FleetQueries())
    source.refresh = functools.partial(source.refresh, now=end)  # type: ignore[method-assign]
    app = FleetApp(source, refresh=3600)
    results: dict[str, list[float]] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while app.screen.id != "fleet" or getattr(app.screen, "report", None) is None:
            await pilot.pause(0.05)
        screen = app.screen
        table = screen.query_one("#fleet-table", DataTable)
        table.focus()
        await pilot.pause(0.2)
        watch = PaintWatch(app)

        async def measure(name: str, key: str, predicate: Any, limit: float = 60.0) -> None:
            watch.predicate, watch.painted_at = predicate, None
            start = time.perf_counter()
            post_keys(app, key)
            while watch.painted_at is None:
                if time.perf_counter() - start > limit:
                    raise RuntimeError(f"{name}: nothing on screen after {limit}s")
                await asyncio.sleep(0.002)
            watch.predicate = None
            results.setdefault(name, []).append(watch.painted_at - start)
            await pilot.pause(0.1)

        for _ in range(presses):
            row = table.cursor_row
            await measure("Down (cursor on the next of 500 rows)", "down",
                          lambda row=row: table.cursor_row == row + 1)
        for _ in range(presses):
            before = screen.report
            await measure("r (refresh: Prometheus + 500 rows repainted)", "r",
                          lambda before=before: screen.report is not before
                          and not screen.in_flight)
        for _ in range(presses):  # the UI thread's share of a refresh: rows into the table
            start = time.perf_counter()
            screen._fill(screen.report)
            results.setdefault("table fill of all rows (on the UI loop, per refresh)",
                               []).append(time.perf_counter() - start)
            await pilot.pause(0.1)
        for _ in range(presses):
            await measure("Enter (metrics page of an unreachable instance, 17 queries)", "enter",
                          lambda: app.screen.id == "fleet-instance" and "TASKS BY KIND" in str(
                              app.screen.query_one("#fleet-instance-body").render()))
            app.pop_screen()
            await pilot.pause(0.2)
        await app.action_quit()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--presses", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="introspect-fleet-bench-") as tmp:
        tmp_path = Path(tmp)
        end = int(time.time()) - 5
        openmetrics = tmp_path / "synthetic.om"
        lines = write_openmetrics(openmetrics, args.instances, end)
        took = backfill(openmetrics, tmp_path / "data")
        print(f"{args.instances} instances, {lines} samples "
              f"({openmetrics.stat().st_size >> 20} MiB OpenMetrics) backfilled in {took:.0f} s")
        openmetrics.unlink()
        rules = tmp_path / "introspect.rules.yml"
        rules.write_text(render_rules())
        prom = Prometheus(tmp_path / "data", rules)
        try:
            costs = refresh_costs(prom.url, end, args.rounds)
            for key, value in costs.items():
                if isinstance(value, dict):
                    print(f"{key}:")
                    for name, text in value.items():
                        print(f"  {name}: {text}")
                else:
                    print(f"{key}: {value}")
            keys = asyncio.run(key_to_screen(prom.url, end, args.presses))
            for name, values in keys.items():
                print(f"key-to-screen, {name}: {ms(values)}")
        finally:
            prom.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
