"""The "hottest functions" of a speedscope profile (the JSON py-spy writes), as data and as a
fixed-width terminal table with everything from the observed process escaped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introspect.errors import UserError
from introspect.textsafe import escape

DEFAULT_TOP = 20


@dataclass(frozen=True)
class FunctionStat:
    """One function (name + file). `own`: weight of samples where it was the innermost frame;
    `total`: samples where it was anywhere on the stack (counted once per sample)."""

    name: str
    file: str
    line: int | None  # the line with the most samples in this function (its def line when
    #                   py-spy aggregated by function)
    own: float
    total: float
    own_share: float  # 0..1 of all samples
    total_share: float

    @property
    def location(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ProfileReport:
    functions: tuple[FunctionStat, ...]  # by own share, then total share, descending
    samples: int
    total_weight: float
    unit: str  # the speedscope unit of the weights ("seconds" from py-spy, or "none")
    threads: int  # profiles (py-spy writes one per thread)


def load_speedscope(path: str | os.PathLike[str]) -> ProfileReport:
    """Read a speedscope file and build its report; UserError if it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {escape(str(p))}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{escape(str(p))} is not a speedscope file: {exc}") from None
    return parse_speedscope(data)


def parse_speedscope(data: Any) -> ProfileReport:
    """Aggregate `profiles[].samples` (stacks of indexes into `shared.frames`, outermost first)
    and `weights` into per-function own/total shares."""
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise UserError("not a speedscope file: no 'profiles' list")
    shared = data.get("shared")
    frames = shared.get("frames") if isinstance(shared, dict) else None
    if not isinstance(frames, list):
        raise UserError("not a speedscope file: no 'shared.frames' list")
    keys: list[tuple[str, str]] = []
    lines: list[int | None] = []
    for f in frames:
        f = f if isinstance(f, dict) else {}
        keys.append((str(f.get("name", "?")), str(f.get("file") or "?")))
        line = f.get("line")
        lines.append(line if isinstance(line, int) and not isinstance(line, bool) else None)

    own: dict[tuple[str, str], float] = {}
    total: dict[tuple[str, str], float] = {}
    by_line: dict[tuple[str, str], dict[int | None, float]] = {}
    samples = 0
    weight_sum = 0.0
    threads = 0
    unit = "none"
    for prof in data["profiles"]:
        if not isinstance(prof, dict) or prof.get("type") != "sampled":
            continue
        stacks = prof.get("samples")
        if not isinstance(stacks, list):
            continue
        threads += 1
        unit = str(prof.get("unit", unit))
        weights = prof.get("weights")
        if not isinstance(weights, list) or len(weights) != len(stacks):
            weights = [1.0] * len(stacks)
        for stack, w in zip(stacks, weights, strict=True):
            if not isinstance(stack, list) or not isinstance(w, int | float):
                continue
            idx = [i for i in stack if isinstance(i, int) and 0 <= i < len(keys)]
            samples += 1
            weight_sum += w
            if not idx:
                continue
            leaf = keys[idx[-1]]
            own[leaf] = own.get(leaf, 0.0) + w
            for i in idx:
                per = by_line.setdefault(keys[i], {})
                per[lines[i]] = per.get(lines[i], 0.0) + w
            for k in {keys[i] for i in idx}:
                total[k] = total.get(k, 0.0) + w

    denom = weight_sum or 1.0
    stats = []
    for k, t in total.items():
        per = by_line[k]
        line = max(per, key=lambda ln: (per[ln], -(ln or 0)))
        o = own.get(k, 0.0)
        stats.append(FunctionStat(name=k[0], file=k[1], line=line, own=o, total=t,
                                  own_share=o / denom, total_share=t / denom))
    stats.sort(key=lambda s: (-s.own, -s.total, s.name, s.file))
    return ProfileReport(functions=tuple(stats), samples=samples, total_weight=weight_sum,
                         unit=unit, threads=threads)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _fit_tail(text: str, width: int) -> str:
    """Cut from the left: the end of a path (file name, line) matters most."""
    return text if len(text) <= width else "…" + text[len(text) - max(0, width - 1):]


def render_top(report: ProfileReport, top: int = DEFAULT_TOP, *, width: int = 100) -> str:
    """The hottest functions as a fixed-width table (`width` columns at most), names and paths
    escaped so the observed process cannot send terminal escapes."""
    if report.samples == 0:
        return "no samples (the process was idle, or exited, while sampling)\n"
    shown = report.functions[: max(0, top)]
    names = [escape(s.name, 200) for s in shown]
    locs = [escape(s.location[-2000:], None) for s in shown]
    fixed = 16  # "  OWN%  TOTAL%  "
    name_w = max([8, *(len(n) for n in names)])
    name_w = min(name_w, max(20, (width - fixed) // 2))
    loc_w = max(10, width - fixed - name_w - 2)
    out = [f"{'OWN':>6} {'TOTAL':>7}  {'FUNCTION':<{name_w}}  LOCATION"]
    for s, n, loc in zip(shown, names, locs, strict=True):
        row = (f"{s.own_share * 100:5.1f}% {s.total_share * 100:6.1f}%  "
               f"{_fit(n, name_w):<{name_w}}  {_fit_tail(loc, loc_w)}")
        out.append(row.rstrip())
    rest = len(report.functions) - len(shown)
    if rest > 0:
        out.append(f"({rest} more functions; use --top N to see more)")
    return "\n".join(out) + "\n"
