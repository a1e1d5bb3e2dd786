"""Docs tables are generated from the code; they must stay true to it."""

from pathlib import Path

from introspect.config import env_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_environment_table_matches_the_code():
    assert env_table() in (ROOT / "README.md").read_text(), (
        "README's environment table is stale: paste `python -m introspect.config` into it")


def test_readme_quick_start_is_two_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [ln.split("#")[0].strip() for ln in quick.splitlines() if ln.strip()]
    assert commands == ["make demo", "make test"]
