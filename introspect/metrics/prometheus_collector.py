"""A prometheus_client `Collector` that turns one agent reading into the catalog's families.

Registered in prometheus_client's default REGISTRY, so an app that already exposes the default
registry (its own ASGI/WSGI `make_asgi_app()`, `generate_latest()`) shows our metrics too.
`describe()` reports nothing: registering never claims names, so an app that registers a
metric with one of our names after us does not get a "Duplicated timeseries" error; at scrape
time we leave such a family out (counted as an agent error) instead of exposing it twice.

prometheus_client is imported in the functions, not here: this module is imported from the
import of prometheus_client itself (`default_registry`), and at scrape time it is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from introspect.metrics.catalog import OURS, MetricSpec
from introspect.metrics.readings import AgentReadings, Reading

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry


class IntrospectCollector:
    """`registry`: the one we are registered in, whose other names we leave out."""

    def __init__(self, readings: AgentReadings, registry: CollectorRegistry | None) -> None:
        self.readings = readings
        self.registry = registry

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        reading = self.readings.read()
        taken = self._names_taken_by_others()
        for spec in OURS:
            if spec.prom in self.readings.disabled:
                continue
            if spec.prom in taken:
                self.readings.agent.collector_errors.record(
                    "metrics.name_clash", ValueError(f"{spec.prom} is registered by the app"))
                continue
            try:
                yield family(spec, reading)
            except Exception as exc:
                self.readings.agent.collector_errors.record("metrics.prometheus", exc)

    def _names_taken_by_others(self) -> set[str]:
        registry = self.registry
        if registry is None:
            return set()
        names = getattr(registry, "_names_to_collectors", None) or {}
        try:
            return {name for name, owner in list(names.items()) if owner is not self}
        except RuntimeError:
            return set()


def family(spec: MetricSpec, reading: Reading) -> Metric:
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    if spec.type == "histogram":
        hist = HistogramMetricFamily(spec.prom, spec.help, labels=spec.labels)
        for labels, buckets, total in reading.histograms.get(spec.prom, []):
            hist.add_metric(list(labels), [(_bound(b), n) for b, n in buckets], total)
        return hist
    samples = reading.samples.get(spec.prom, [])
    metric: Any
    if spec.type == "counter":
        metric = CounterMetricFamily(spec.prom, spec.help, labels=spec.labels)
    else:
        metric = GaugeMetricFamily(spec.prom, spec.help, labels=spec.labels)
    for labels, value in samples:
        metric.add_metric(list(labels), float(value))
    return metric


def _bound(upper: float) -> str:
    return "+Inf" if upper == float("inf") else repr(float(upper))
