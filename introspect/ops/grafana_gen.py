"""Grafana dashboards as code: plain dicts, rendered to JSON by dashboards/generate.py.

Conventions every panel follows (checked by tests/dashboards/test_dashboard_lint.py):
a `datasource` variable, `job`/`instance` variables (multi, All) matched as
`job=~"$job", instance=~"$instance"` on every series, `$__rate_interval` in every rate,
a unit, a title and a description on every panel, only timeseries/stat/table panels.
"""

from __future__ import annotations

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
RI = "$__rate_interval"


def m(metric: str, *matchers: str) -> str:
    """A series selector limited to the dashboard's job/instance variables."""
    return f"{metric}{{{', '.join((*matchers, SEL))}}}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({m(metric, *matchers)}[{RI}])"


def quantile(q: float, histogram: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) ({rate(histogram + '_bucket')}))"


def target(expr: str, legend: str = "", ref: str = "A", table: bool = False) -> dict:
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto",
         "range": True, "instant": False, "refId": ref}
    if table:
        t["format"] = "table"
    return t


def _targets(queries: list[tuple[str, str]], table: bool = False) -> list[dict]:
    return [target(expr, legend, chr(ord("A") + i), table)
            for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, description: str, unit: str, queries: list[tuple[str, str]],
               w: int = 12, h: int = 8, stack: bool = False) -> dict:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if stack else 0,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return {
        "type": "timeseries", "title": title, "description": description,
        "datasource": DATASOURCE, "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": custom},
                        "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom",
                               "showLegend": True, "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": _targets(queries),
    }


def stat(title: str, description: str, unit: str, expr: str, w: int = 4,
         thresholds: list[tuple[float | None, str]] | None = None) -> dict:
    steps = [{"color": color, "value": value}
             for value, color in (thresholds or [(None, "green")])]
    return {
        "type": "stat", "title": title, "description": description,
        "datasource": DATASOURCE, "gridPos": {"w": w, "h": 4},
        "fieldConfig": {"defaults": {"unit": unit,
                                     "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                    "orientation": "auto", "textMode": "auto"},
        "targets": _targets([(expr, "")]),
    }


def table(title: str, description: str, unit: str, expr: str, value_label: str,
          w: int = 12, h: int = 8) -> dict:
    """Worst value over the dashboard's time range, one row per series, largest first."""
    return {
        "type": "table", "title": title, "description": description,
        "datasource": DATASOURCE, "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"align": "auto"}},
                        "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm",
                    "sortBy": [{"displayName": f"Max {value_label}", "desc": True}]},
        "transformations": [
            {"id": "reduce", "options": {"mode": "seriesToRows", "reducers": ["max", "lastNotNull"],
                                         "labelsToFields": True}},
            {"id": "organize", "options": {"renameByName": {"Max": f"Max {value_label}",
                                                            "Last *": f"Last {value_label}"}}},
        ],
        "targets": _targets([(expr, "")]),
    }


def variables(job_metric: str) -> list[dict]:
    def query_var(name: str, label: str, query: str) -> dict:
        return {
            "type": "query", "name": name, "label": label, "datasource": DATASOURCE,
            "definition": query, "query": {"query": query, "refId": f"{name}-values"},
            "multi": True, "includeAll": True, "allValue": ".+",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "refresh": 2, "sort": 1, "regex": "", "hide": 0, "options": [],
        }

    return [
        {"type": "datasource", "name": "datasource", "label": "Data source",
         "query": "prometheus", "current": {}, "refresh": 1, "regex": "", "hide": 0,
         "options": []},
        query_var("job", "Job", f"label_values({job_metric}, job)"),
        query_var("instance", "Instance", f'label_values({job_metric}{{job=~"$job"}}, instance)'),
    ]


def layout(panels: list[dict]) -> list[dict]:
    """Flow panels left to right, wrapping at Grafana's 24 columns; stable ids from 1."""
    x = y = row_h = 0
    out = []
    for i, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"id": i, **panel, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
        x, row_h = x + w, max(row_h, h)
    return out


def dashboard(uid: str, title: str, description: str, panels: list[dict]) -> dict:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["introspect", "python"], "editable": True, "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "timezone": "browser",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"type": "dashboards", "tags": ["introspect"], "asDropdown": False,
                   "includeVars": True, "keepTime": True, "title": "introspect",
                   "icon": "external link", "targetBlank": False, "tooltip": "", "url": ""}],
        "templating": {"list": variables("python_info")},
        "panels": layout(panels),
    }


# Evaluating the dashboards outside Grafana (tests, ad-hoc checks) -------------------------

# How Grafana's variables are replaced to run a panel's query straight against Prometheus.
# `$job`/`$instance` sit inside `=~"..."`, so any regex works; `.+` is Grafana's "All" here.
DEFAULT_SUBSTITUTIONS = {"job": ".+", "instance": ".+", "__rate_interval": "1m"}


def render_expr(expr: str, **values: str) -> str:
    """`expr` with `$name`/`${name}` replaced: DEFAULT_SUBSTITUTIONS updated with `values`."""
    subs = {**DEFAULT_SUBSTITUTIONS, **values}
    for name in sorted(subs, key=len, reverse=True):  # $__rate_interval before shorter names
        expr = expr.replace("${" + name + "}", subs[name]).replace("$" + name, subs[name])
    return expr


def panel_queries(board: dict) -> list[tuple[str, str, str]]:
    """(panel title, refId, raw expr) of every target of every panel."""
    return [(panel["title"], t["refId"], t["expr"])
            for panel in board["panels"] for t in panel.get("targets", [])]


def variable_queries(board: dict) -> list[tuple[str, str]]:
    """(variable name, PromQL) for every `label_values(SELECTOR, LABEL)` query variable."""
    out = []
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        text = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        inner = text.strip().removeprefix("label_values(").removesuffix(")")
        selector, _, label = inner.rpartition(",")
        out.append((var["name"], f"count by ({label.strip()}) ({selector.strip()})"))
    return out
