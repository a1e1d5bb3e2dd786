"""The app's own metrics: fetched from the agent's Prometheus endpoint (the snapshot names it in
`agent.metrics`) and parsed with prometheus_client's parser."""

from __future__ import annotations

import urllib.request
from collections import deque
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

MAX_BODY = 8 * 1024 * 1024
MAX_SERIES = 2000


@dataclass(frozen=True)
class MetricValue:
    name: str
    labels: str
    value: float
    type: str
    help: str


def metrics_url(advertised: str) -> str:
    url = advertised if "://" in advertised else f"http://{advertised}"
    if url.count("/") < 3:
        url += "/metrics"
    return url


def fetch(url: str, timeout: float = 3.0) -> list[MetricValue]:
    """Blocking: call it from a thread."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read(MAX_BODY).decode("utf-8", "replace")
    return parse(body)


def parse(text: str) -> list[MetricValue]:
    out: list[MetricValue] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out.append(MetricValue(sample.name, labels, float(sample.value), family.type,
                                   family.documentation))
            if len(out) >= MAX_SERIES:
                return out
    return out


class MetricHistory:
    """Recent values per series, for sparklines; bounded in series and length."""

    def __init__(self, length: int = 60) -> None:
        self.length = length
        self.series: dict[tuple[str, str], deque[float]] = {}

    def add(self, values: list[MetricValue]) -> None:
        for v in values:
            key = (v.name, v.labels)
            trend = self.series.get(key)
            if trend is None:
                if len(self.series) >= MAX_SERIES:
                    continue
                trend = self.series[key] = deque(maxlen=self.length)
            trend.append(v.value)

    def trend(self, value: MetricValue) -> list[float]:
        return list(self.series.get((value.name, value.labels), ()))
