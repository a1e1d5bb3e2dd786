"""Rewrite README's environment table from introspect.config (tests/test_docs_current.py)."""

from pathlib import Path

from introspect.config import env_table

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
start = text.index("| variable | meaning |")
end = text.index("\n\n", start)
readme.write_text(text[:start] + env_table() + text[end:])
