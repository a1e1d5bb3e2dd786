"""The committed rules, dashboards, promtool tests and configs are exactly what the package's
generators produce (`introspect export` writes the same files)."""

from __future__ import annotations

import json
import subprocess
import sys

from dashboards.generate import render_all


def test_committed_files_equal_generator_output(repo):
    for rel, text in render_all().items():
        path = repo / rel
        assert path.exists(), f"{rel} missing: run `python -m dashboards.generate`"
        assert path.read_text() == text, f"{rel} is stale: run `python -m dashboards.generate`"


def test_generator_cli_check_and_write(repo, tmp_path):
    check = subprocess.run([sys.executable, "-m", "dashboards.generate", "--check"],
                           cwd=repo, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    stale = subprocess.run([sys.executable, "-m", "dashboards.generate", "--check",
                            "--out", str(tmp_path)], cwd=repo, capture_output=True, text=True,
                           timeout=60)
    assert stale.returncode == 1 and "out of date" in stale.stderr
    write = subprocess.run([sys.executable, str(repo / "dashboards" / "generate.py"),
                            "--out", str(tmp_path), "--for-scale", "0.05"],
                           capture_output=True, text=True, timeout=60)
    assert write.returncode == 0, write.stderr
    assert "for: '15s'" in (tmp_path / "dashboards/alerts/introspect.rules.yml").read_text()
    for board in (tmp_path / "dashboards/grafana").glob("*.json"):
        json.loads(board.read_text())


def test_bad_threshold_is_a_clear_error(repo):
    result = subprocess.run([sys.executable, "-m", "dashboards.generate", "--check",
                             "--set", "nope=1"], cwd=repo, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "NAME=VALUE" in result.stderr
