"""grafana/dashboard-linter's rules, on the committed dashboards (equal to the generator's)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOARDS = sorted((REPO / "dashboards" / "grafana").glob("*.json"))
COUNTER = re.compile(r"_(total|count|sum|bucket)$")
RATE_FUNCS = {"rate", "irate", "increase"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan",
            # aggregation operators may put `by (...)` before their argument
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}
ALLOWED_VARS = {"job", "instance", "__rate_interval"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def blank(text: str, open_: str, close: str) -> str:
    """Replace what is between `open_` and its `close` with spaces (same length)."""
    out, depth = [], 0
    for ch in text:
        if ch == close and depth:
            depth -= 1
        out.append(ch if depth == 0 else " ")
        if ch == open_:
            depth += 1
    return "".join(out)


def skeleton(expr: str) -> str:
    """The expression with strings, label matchers, ranges and grouping labels blanked out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + " " * (len(m.group()) - 2) + '"', expr)
    expr = blank(blank(expr, "{", "}"), "[", "]")
    return re.sub(r"\b(by|without|on|ignoring|group_left|group_right)(\s*)\(([^)]*)\)",
                  lambda m: m.group(1) + m.group(2) + "(" + " " * len(m.group(3)) + ")", expr)


def metric_names(expr: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of every metric name in a PromQL expression."""
    skel = skeleton(expr)
    out = []
    for m in re.finditer(r"(?<![\w:.$])[a-zA-Z_:][\w:]*", skel):
        if m.group().lower() in KEYWORDS or re.match(r"\s*\(", skel[m.end():]):
            continue  # a keyword or a function call
        out.append((m.group(), m.start(), m.end()))
    return out


def enclosing_function(expr: str, pos: int) -> str | None:
    skel, depth = skeleton(expr), 0
    for i in range(pos - 1, -1, -1):
        if skel[i] == ")":
            depth += 1
        elif skel[i] == "(":
            if depth == 0:
                name = re.search(r"([a-zA-Z_]\w*)\s*$", skel[:i])
                return name.group(1) if name else None
            depth -= 1
    return None


def rate_ranges(expr: str) -> list[str]:
    """The range of every rate/irate/increase call (e.g. '$__rate_interval')."""
    ranges = []
    for m in re.finditer(r"\b(rate|irate|increase)\s*\(", expr):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        ranges += re.findall(r"\[([^\]]*)\]", expr[m.end():i])
    return ranges


def all_exprs() -> list[tuple[str, str]]:
    return [(f"{p.stem}: {panel['title']} {t['refId']}", t["expr"])
            for p in BOARDS for panel in load(p)["panels"] for t in panel["targets"]]


EXPRS = all_exprs()


def test_both_dashboards_exist():
    assert [p.name for p in BOARDS] == ["introspect-fleet.json", "introspect-python-service.json"]


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_dashboard_settings(path):
    board = load(path)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"]), "stable uid of at most 40 chars"
    assert board["uid"] == path.stem
    assert board["schemaVersion"] >= 39
    assert board["title"] and board["description"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for name in ("job", "instance"):
        var = variables[name]
        assert var["type"] == "query" and var["multi"] and var["includeAll"], name
        assert var["datasource"] == DATASOURCE, name
        assert var["query"]["query"].startswith("label_values("), name
    assert 'job=~"$job"' in variables["instance"]["query"]["query"]


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_panels(path):
    panels = load(path)["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "unique panel ids"
    for panel in panels:
        where = f"{path.stem}: {panel.get('title')!r}"
        assert panel["type"] in {"timeseries", "stat", "table"}, f"{where}: deprecated type"
        assert panel["title"].strip() and panel["description"].strip(), where
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], where
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), where
        for t in panel["targets"]:
            assert t["datasource"] == DATASOURCE, where
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=[w for w, _ in EXPRS])
def test_query(where, expr):
    assert set(re.findall(r"\$\{?(\w+)", expr)) <= ALLOWED_VARS, "unknown variable"
    assert all(r == "$__rate_interval" for r in rate_ranges(expr)), "use [$__rate_interval]"
    names = metric_names(expr)
    assert names, "no metric in the query"
    for name, start, end in names:
        if COUNTER.search(name):
            assert enclosing_function(expr, start) in RATE_FUNCS, f"{name} not in rate/increase"
        selector = re.match(r"\{([^}]*)\}", expr[end:])
        assert selector, f"{name} has no label matchers"
        assert 'job=~"$job"' in selector.group(1), f"{name}: no job matcher"
        assert 'instance=~"$instance"' in selector.group(1), f"{name}: no instance matcher"


@pytest.mark.parametrize(("expr", "problem"), [
    ('sum(python_exceptions_total{job=~"$job", instance=~"$instance"})', "not in rate"),
    ('rate(python_exceptions_total{job=~"$job", instance=~"$instance"}[5m])', "rate_interval"),
    ('python_threads{job=~"$job"}', "no instance matcher"),
    ("python_threads", "no label matchers"),
    ('python_threads{job=~"$job", instance=~"$instance", x="$other"}', "unknown variable"),
])
def test_linter_catches_mistakes(expr, problem):
    with pytest.raises(AssertionError, match=problem):
        test_query("example", expr)


def test_metric_name_scanner():
    expr = ('histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{le="1", x=~"y"}[5m])))'
            " / on (job) group_left b_total and c")
    assert [n for n, _, _ in metric_names(expr)] == ["a_bucket", "b_total", "c"]
    assert enclosing_function(expr, expr.index("a_bucket")) == "rate"
