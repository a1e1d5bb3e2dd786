"""The alert rules: promtool accepts them, and their unit tests pass for every alert."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dashboards.generate import RULES_FILE, render_rules
from introspect.ops.alerts_gen import THRESHOLDS, RuleConfig, parse_override, rule_groups
from tests.support.prometheus_server import find_binary

# PRODUCT.md's contract: exactly these alerts, never renamed.
ALERT_NAMES = {
    "IntrospectTargetDown", "PythonEventLoopLagHigh", "PythonEventLoopBlocked",
    "PythonQueueBacklogGrowing", "PythonQueueSaturated", "PythonTaskGroupVanished",
    "PythonTaskCrashLoop", "PythonTaskLeak", "PythonUnhandledExceptions", "PythonGCPauseHigh",
    "PythonMemoryGrowing", "PythonFileDescriptorsExhausted", "PythonExecutorSaturated",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_binary("promtool"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def unit_test_files(repo: Path) -> list[Path]:
    return sorted((repo / "dashboards/alerts/tests").glob("*.yml"))


def test_alert_names_are_the_product_contract():
    names = {r["alert"] for g in rule_groups(RuleConfig())["groups"] for r in g["rules"]
             if "alert" in r}
    assert names == ALERT_NAMES


def test_promtool_check_rules(repo):
    result = promtool("check", "rules", repo / RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass(repo):
    files = unit_test_files(repo)
    assert files, "no promtool unit tests in dashboards/alerts/tests"
    result = promtool("test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert", sorted(ALERT_NAMES))
def test_every_alert_is_unit_tested_firing_and_silent(repo, alert):
    """Each alert has a case where it fires (labels + annotations) and one where it must not."""
    text = "\n".join(p.read_text() for p in unit_test_files(repo))
    fires = re.search(rf"alertname: {alert}\n\s+exp_alerts:\n\s+- exp_labels: \{{severity: "
                      r"\w+.*\}\n\s+exp_annotations:\n\s+summary: .+\n\s+description: .+\n"
                      r"\s+runbook_url: .+", text)
    silent = re.search(rf"alertname: {alert}\n\s+exp_alerts: \[\]", text)
    assert fires, f"{alert}: no unit test expects it to fire with labels and annotations"
    assert silent, f"{alert}: no unit test expects it to stay silent (before `for:`, blips)"


def test_for_scale_and_overrides_render_valid_rules(tmp_path):
    config = RuleConfig(for_scale=0.05, overrides={"queue_backlog_min_items": 7},
                        selector='job=~"demo.*"')
    path = tmp_path / "rules.yml"
    path.write_text(render_rules(config))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = path.read_text()
    assert "for: '15s'" in text and "for: '30s'" in text and "for: '5m'" not in text
    assert 'python_queue_length{job=~"demo.*"} > 7' in text
    assert 'up{job=~"demo.*"} == 0' in text


def test_parse_override():
    assert parse_override("queue_backlog_min_items=500") == ("queue_backlog_min_items", 500)
    assert parse_override("gc_pause_ratio=0.1") == ("gc_pause_ratio", 0.1)
    assert parse_override("task_group_lookback=30m") == ("task_group_lookback", "30m")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_override("no_such_threshold=1")
    assert set(THRESHOLDS) >= {"loop_lag_p99_seconds", "crash_loop_errors_per_15m"}
