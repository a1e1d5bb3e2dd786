"""The demo's own metrics, in prometheus_client's default registry, like any service's: the agent
exports them next to its own (seed 001: "most importantly your own custom metrics")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

COMMENTS_PROCESSED = Counter(
    "demo_comments_processed_total", "Comments published by the comments workers."
)
REQUESTS_IN_FLIGHT = Gauge(
    "demo_requests_in_flight", "Requests being handled, by route.", ["route"]
)
REQUEST_SECONDS = Histogram(
    "demo_request_seconds", "Time to handle a request, by route.", ["route"]
)

ROUTES = ("accounts", "reports", "media")


@contextmanager
def track_request(route: str) -> Iterator[None]:
    """Count a request in flight and observe its duration, also when it fails or is cancelled."""
    in_flight = REQUESTS_IN_FLIGHT.labels(route)
    in_flight.inc()
    started = time.perf_counter()
    try:
        yield
    finally:
        in_flight.dec()
        REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
