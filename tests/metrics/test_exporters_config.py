"""The shipped receiving-side configs: `promtool check config` accepts them, and the real
Prometheus, run with the shipped scrape config (its targets pointed at a real agent), applies the
relabeling: `job` from the file_sd `service` label, `host` without the port."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.metrics.support import REPO, AgentProcess, metrics_url
from tests.support.prometheus_server import PrometheusServer, find_binary, free_port

CONFIGS = REPO / "exporters" / "prometheus"


def test_promtool_accepts_the_shipped_prometheus_configs() -> None:
    for name in ("prometheus.yml", "prometheus-from-collector.yml"):
        result = subprocess.run([find_binary("promtool"), "check", "config", name],
                                cwd=CONFIGS, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr


class ShippedConfigPrometheus(PrometheusServer):
    """The helper's server, but with exporters/prometheus/prometheus.yml as its config (static
    targets and file_sd target files rewritten to point at `target`)."""

    def __init__(self, target: str) -> None:
        super().__init__({})
        self.target = target
        self.config_dir = Path(tempfile.mkdtemp(prefix="introspect-shipped-"))

    def start(self) -> ShippedConfigPrometheus:
        text = (CONFIGS / "prometheus.yml").read_text()
        text = re.sub(r'targets: \[.*?\]', f'targets: ["{self.target}"]', text, count=1)
        text = re.sub(r"rule_files:\n(  - .*\n)+", "", text)
        text = text.replace("scrape_interval: 15s", "scrape_interval: 1s").replace(
            "scrape_timeout: 10s", "scrape_timeout: 1s")
        (self.config_dir / "targets").mkdir()
        example = json.loads((CONFIGS / "targets" / "example.json").read_text())
        example[0]["targets"] = [self.target]
        (self.config_dir / "targets" / "example.json").write_text(json.dumps(example[:1]))
        (self.config_dir / "prometheus.yml").write_text(text)
        self._config = lambda: None  # type: ignore[method-assign]
        return self._start_with(self.config_dir / "prometheus.yml")

    def _start_with(self, config: Path) -> ShippedConfigPrometheus:
        self._tmp = tempfile.TemporaryDirectory(prefix="introspect-prom-")
        self.port = free_port()
        self._log = Path(self._tmp.name) / "prometheus.log"
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [find_binary(), f"--config.file={config}",
                 f"--storage.tsdb.path={Path(self._tmp.name) / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_for(self._ready, message="Prometheus ready")
        return self

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.config_dir, ignore_errors=True)


def test_the_shipped_scrape_config_relabels_job_and_instance() -> None:
    with AgentProcess.script("import time; print('up', flush=True); time.sleep(3600)",
                             agent_args=["--metrics-port", "0"]) as proc:
        target = metrics_url(proc).removeprefix("http://").removesuffix("/metrics")
        host = target.rsplit(":", 1)[0]
        with ShippedConfigPrometheus(target) as prom:
            static = prom.wait_for(lambda: prom.query(
                'python_threads{job="python-services"}'), message="static job scraped")
            assert static[0]["metric"]["instance"] == host  # port dropped
            assert static[0]["metric"]["service"] == "checkout"
            file_sd = prom.wait_for(lambda: prom.query(
                'python_threads{job="media-gateway"}'), message="file_sd job from `service`")
            assert file_sd[0]["metric"]["instance"] == target
            assert file_sd[0]["metric"]["host"] == host
