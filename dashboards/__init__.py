"""Grafana dashboards and Prometheus rules for introspect, generated from code."""
