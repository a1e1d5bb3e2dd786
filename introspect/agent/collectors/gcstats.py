"""Garbage collection: counts per generation from `gc.get_stats()`, pauses via `gc.callbacks`."""

from __future__ import annotations

import gc
import time

from introspect.agent.collectors.loop import Histogram

try:
    from introspect.agent import _gc_accel
except ImportError:  # pragma: no cover - no C compiler: the Python callback times pauses
    _gc_accel = None  # type: ignore[assignment]

PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcCollector:
    """Pauses per generation, timed by our `gc.callbacks` entry: the C `PauseTimer` where the
    extension is built (the entry runs inside every pause it times, twice per collection), else
    the Python callback below."""

    def __init__(self) -> None:
        self._timer = _gc_accel.PauseTimer(PAUSE_BUCKETS) if _gc_accel is not None else None
        self._pauses = [Histogram(PAUSE_BUCKETS) for _ in range(3)]
        self._pause_total = 0.0
        self._pause_max = 0.0
        self._started = 0.0
        self._installed: object = None

    @property
    def pauses(self) -> list[Histogram]:
        if self._timer is None:
            return self._pauses
        counts, sums, observed, _total, _max = self._timer.read()
        pauses = []
        for gen in range(3):
            hist = Histogram(PAUSE_BUCKETS)
            hist.counts, hist.sum, hist.count = counts[gen], sums[gen], observed[gen]
            pauses.append(hist)
        return pauses

    @property
    def pause_total(self) -> float:
        return self._timer.read()[3] if self._timer is not None else self._pause_total

    @property
    def pause_max(self) -> float:
        return self._timer.read()[4] if self._timer is not None else self._pause_max

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            pause = time.perf_counter() - self._started
            self._started = 0.0
            gen = info.get("generation", 0)
            if 0 <= gen < 3:
                self._pauses[gen].observe(pause)
            self._pause_total += pause
            if pause > self._pause_max:
                self._pause_max = pause

    def install(self) -> None:
        if self._installed is None:
            self._installed = self._timer if self._timer is not None else self._callback
            gc.callbacks.append(self._installed)

    def uninstall(self) -> None:
        if self._installed is not None:
            try:
                gc.callbacks.remove(self._installed)
            except ValueError:
                pass
            self._installed = None

    def stats(self) -> dict:
        per_gen = gc.get_stats()
        return {
            "collections": [g.get("collections", 0) for g in per_gen],
            "collected": [g.get("collected", 0) for g in per_gen],
            "uncollectable": [g.get("uncollectable", 0) for g in per_gen],
            "pause_seconds_total": self.pause_total,
            "pause_max_seconds": self.pause_max,
            "enabled": gc.isenabled(),
            "thresholds": list(gc.get_threshold()),
            "counts": list(gc.get_count()),
        }
