"""mixtool's alert lint rules, on the generated rules (equal to the committed file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from introspect.ops.alerts_gen import RUNBOOK_URL, RuleConfig, rule_groups

RULES = [r for g in rule_groups(RuleConfig())["groups"] for r in g["rules"]]
ALERTS = [r for r in RULES if "alert" in r]
RECORDS = [r for r in RULES if "record" in r]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


@pytest.mark.parametrize("rule", ALERTS, ids=[r["alert"] for r in ALERTS])
def test_alert_follows_mixin_conventions(rule):
    assert re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+", rule["alert"]), "CamelCase name"
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert re.fullmatch(r"[1-9]\d*m", rule["for"]), "`for:` set, in whole minutes"
    notes = rule["annotations"]
    assert set(notes) >= {"summary", "description", "runbook_url"}
    assert notes["summary"].endswith(".") and "{{" not in notes["summary"], "static summary"
    assert "{{ $labels." in notes["description"], "templated description"
    assert notes["runbook_url"] == f"{RUNBOOK_URL}#{rule['alert'].lower()}"


def test_runbook_has_an_anchor_for_every_alert(repo: Path):
    anchors = github_anchors((repo / "docs" / "runbook.md").read_text())
    missing = [r["alert"] for r in ALERTS if r["alert"].lower() not in anchors]
    assert not missing, f"docs/runbook.md lacks a section for {missing}"


def test_runbook_says_what_to_open_for_every_alert(repo: Path):
    text = (repo / "docs" / "runbook.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    by_name = {s.split("\n", 1)[0].strip(): " ".join(s.split()) for s in sections}
    for rule in ALERTS:
        section = by_name[rule["alert"]]
        assert "introspect top" in section, f"{rule['alert']}: which `introspect top` view"
        assert "introspect dump" in section or "introspect console" in section, rule["alert"]


@pytest.mark.parametrize("rule", RECORDS, ids=[r["record"] for r in RECORDS])
def test_recording_rule_names_are_level_metric_operations(rule):
    assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"])


def test_recording_rules_are_used():
    exprs = "\n".join(r["expr"] for r in ALERTS)
    unused = [r["record"] for r in RECORDS if r["record"] not in exprs]
    assert not unused
