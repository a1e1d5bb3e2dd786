"""Metrics exporters: Prometheus `/metrics` and OpenTelemetry OTLP, both generated from one
catalog (`introspect.metrics.catalog`). Started by the agent as extensions; see docs/metrics.md.
"""
