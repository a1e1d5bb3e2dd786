"""The hottest-functions table from speedscope data: shares, order, limits, escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from introspect.errors import UserError
from introspect.profiling.report import load_speedscope, parse_speedscope, render_top


def _speedscope(frames: list[tuple[str, str, int]], profiles: list[list[list[int]]]) -> dict:
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": [{"name": n, "file": f, "line": ln, "col": None}
                              for n, f, ln in frames]},
        "profiles": [{"type": "sampled", "name": f"Thread {i}", "unit": "seconds",
                      "startValue": 0, "endValue": 1, "samples": s,
                      "weights": [0.01] * len(s)} for i, s in enumerate(profiles)],
        "exporter": "py-spy@0.4.3",
    }


FRAMES = [("main", "/app/m.py", 1), ("work", "/app/w.py", 10), ("leaf", "/app/w.py", 20),
          ("work", "/app/w.py", 11), ("rec", "/app/r.py", 5)]


def test_own_and_total_shares() -> None:
    # 10 samples: main>work>leaf x4, main>work(line 11) x4, main>rec>rec x2
    stacks = [[0, 1, 2]] * 4 + [[0, 3]] * 4 + [[0, 4, 4]] * 2
    report = parse_speedscope(_speedscope(FRAMES, [stacks]))
    assert report.samples == 10 and report.threads == 1
    by_name = {s.name: s for s in report.functions}
    assert by_name["work"].own_share == pytest.approx(0.4)
    assert by_name["work"].total_share == pytest.approx(0.8)  # both lines of one function
    assert by_name["work"].line in (10, 11)
    assert by_name["leaf"].own_share == pytest.approx(0.4)
    assert by_name["main"].own_share == 0 and by_name["main"].total_share == pytest.approx(1.0)
    assert by_name["rec"].total_share == pytest.approx(0.2)  # recursion counted once
    assert [s.name for s in report.functions] == ["work", "leaf", "rec", "main"]


def test_threads_and_unweighted_samples_add_up() -> None:
    data = _speedscope(FRAMES, [[[0, 1]] * 3, [[0, 4]]])
    del data["profiles"][1]["weights"]
    data["profiles"][0]["weights"] = [1, 1, 1]
    data["profiles"].append({"type": "evented", "events": []})  # ignored
    report = parse_speedscope(data)
    assert report.samples == 4 and report.threads == 2
    assert report.functions[0].name == "work"
    assert report.functions[0].own_share == pytest.approx(0.75)


def test_render_top_limit_and_columns() -> None:
    stacks = [[0, 1, 2]] * 4 + [[0, 3]] * 4 + [[0, 4, 4]] * 2
    text = render_top(parse_speedscope(_speedscope(FRAMES, [stacks])), top=2, width=80)
    lines = text.splitlines()
    assert lines[0].split() == ["OWN", "TOTAL", "FUNCTION", "LOCATION"]
    assert lines[1].split()[:3] == ["40.0%", "80.0%", "work"]
    assert lines[2].split()[:3] == ["40.0%", "40.0%", "leaf"]
    assert lines[3] == "(2 more functions; use --top N to see more)"
    assert all(len(ln) <= 80 for ln in lines)


def test_long_paths_keep_their_end() -> None:
    frames = [("f", "/very/" + "deep/" * 40 + "mod.py", 123)]
    text = render_top(parse_speedscope(_speedscope(frames, [[[0]]])), width=70)
    row = text.splitlines()[1]
    assert row.endswith("mod.py:123") and "…" in row and len(row) <= 70


def test_hostile_names_are_escaped() -> None:
    frames = [("evil_\x1b[2J\x1b]0;t\x07\u202e\n", "/tmp/\x1b[31m.py", 1)]
    text = render_top(parse_speedscope(_speedscope(frames, [[[0]]])))
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "evil_\\x1b[2J\\x1b]0;t\\x07\\u202e\\x0a" in text
    assert "/tmp/\\x1b[31m.py:1" in text
    assert text.count("\n") == 2  # header + one row: the newline in the name was escaped


def test_empty_profile() -> None:
    report = parse_speedscope(_speedscope(FRAMES, [[]]))
    assert report.samples == 0 and report.functions == ()
    assert render_top(report).startswith("no samples")


@pytest.mark.parametrize("content", ["not json", "[]", '{"profiles": []}',
                                     '{"shared": {"frames": []}}'])
def test_not_speedscope(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(UserError, match="not a speedscope file"):
        load_speedscope(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_speedscope(tmp_path / "none.json")


def test_garbage_indexes_are_ignored() -> None:
    data = _speedscope(FRAMES, [[[0, 99, -1, "x"], [], "bad"]])  # type: ignore[list-item]
    report = parse_speedscope(data)
    assert report.samples == 2
    assert report.functions[0].name == "main"


def test_real_pyspy_file_round_trip(tmp_path: Path) -> None:
    data = _speedscope(FRAMES, [[[0, 1]] * 2])
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    assert load_speedscope(path).functions[0].name == "work"
