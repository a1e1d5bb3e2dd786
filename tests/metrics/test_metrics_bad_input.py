"""Misconfiguration is loud and clear: one `introspect: error: ...` line, a non-zero exit, the
program does not run half-observed, and never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.metrics.support import AgentProcess

APP = [sys.executable, "-c", "print('the app ran')"]


def _run(agent_args: list[str], env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "introspect", "run", *agent_args, "--", *APP],
                          capture_output=True, text=True, timeout=60, env=full_env)


def _assert_one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "the app ran" not in result.stdout
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("introspect: error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_metrics_port_in_use_is_a_clear_startup_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _run(["--metrics-port", str(port)])
    _assert_one_clear_error(result, f"127.0.0.1:{port}", "already in use")
    assert result.returncode == 2


def test_start_in_code_raises_user_error_for_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        source = f"""
            import introspect
            from introspect.errors import UserError
            try:
                introspect.start(metrics_port={taken.getsockname()[1]})
            except UserError as exc:
                print("refused:", exc, flush=True)
            print("agent running:", introspect.get_agent() is not None, flush=True)
        """
        with AgentProcess.script(source, under_run=False) as proc:
            proc.wait_for_line("agent running")
            out = "".join(proc.stdout)
    assert "refused: cannot serve /metrics" in out
    assert "agent running: False" in out


@pytest.mark.parametrize(("variable", "value", "needle"), [
    ("OTEL_METRIC_EXPORT_INTERVAL", "abc", "expected milliseconds"),
    ("OTEL_METRIC_EXPORT_TIMEOUT", "-5", "greater than 0"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "expected a URL"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999", "port"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "supported are http/protobuf, grpc"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "opentelemetry-exporter-otlp-proto-grpc"),
    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", "cumulative"),
])
def test_bad_otel_values_give_a_clear_message(variable: str, value: str, needle: str) -> None:
    result = _run(["--otlp"], {variable: value})
    _assert_one_clear_error(result, needle)
    if variable != "OTEL_EXPORTER_OTLP_PROTOCOL" or value != "grpc":
        assert variable in result.stderr


def test_bad_otel_values_are_ignored_without_otlp() -> None:
    result = _run([], {"OTEL_METRIC_EXPORT_INTERVAL": "abc"})
    assert result.returncode == 0 and "the app ran" in result.stdout, result.stderr
