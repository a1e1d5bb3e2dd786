"""Garbage collection: counts per generation from `gc.get_stats()`, pauses via `gc.callbacks`."""

from __future__ import annotations

import gc
import time

from introspect.agent.collectors.loop import Histogram

PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcCollector:
    def __init__(self) -> None:
        self.pauses = [Histogram(PAUSE_BUCKETS) for _ in range(3)]
        self.pause_total = 0.0
        self.pause_max = 0.0
        self._started = 0.0
        self._installed = False

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            pause = time.perf_counter() - self._started
            self._started = 0.0
            gen = info.get("generation", 0)
            if 0 <= gen < 3:
                self.pauses[gen].observe(pause)
            self.pause_total += pause
            if pause > self.pause_max:
                self.pause_max = pause

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            try:
                gc.callbacks.remove(self._callback)
            except ValueError:
                pass
            self._installed = False

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
