"""The fleet: every instance a Prometheus-compatible server knows, ranked by trouble.

`api` speaks the documented HTTP API (query, query_range, alerts, targets) with auth and TLS;
`queries` builds one bounded PromQL set per refresh; `ranking` scores instances from its answers;
`reach` finds an agent to attach to for an instance; `detail` is the metrics-only page.
See docs/fleet.md.
"""
