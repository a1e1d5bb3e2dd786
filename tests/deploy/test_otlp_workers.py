"""OTLP from uvicorn `--workers`: one stream per worker, each with its own `process.pid` and
`service.instance.id`, named after the command the user ran (`uvicorn`), not `python3`."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.support import BIN, free_ports, start, workers_of, write_app
from tests.metrics.support import OtlpReceiver
from tests.support.procs import wait_until


def test_each_uvicorn_worker_exports_its_own_stream(tmp_path: Path) -> None:
    write_app(tmp_path)
    app_port, metrics_port = free_ports(2)
    argv = [str(BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(app_port),
            "--workers", "2"]
    with OtlpReceiver() as receiver:
        env = {"INTROSPECT_OTLP": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
               "OTEL_METRIC_EXPORT_INTERVAL": "300"}
        with start(argv, tmp_path, metrics_port, env) as proc:
            workers = {w["pid"] for w in workers_of(proc.pid, 2)}

            def streams() -> dict[int, dict] | None:
                seen = {r.get("process.pid"): r for r in receiver.resources()}
                return seen if workers <= set(seen) else None

            seen = wait_until(streams, timeout=60, message="a stream from every worker")
            for pid in workers:
                assert seen[pid]["service.name"] == "uvicorn", seen[pid]
            ids = {seen[pid]["service.instance.id"] for pid in workers}
            assert len(ids) == len(workers)
