"""The Prometheus exporter: the agent's collector in the default registry, and `/metrics` when a
port is configured (`--metrics-port`, `INTROSPECT_METRICS_PORT`, `start(metrics_port=...)`).

Misconfiguration is loud: a port in use raises `UserError`, so `introspect run` prints
`introspect: error: cannot serve /metrics on 127.0.0.1:9464: already in use ...` and exits
with status 2 before the program runs; `introspect.start()` raises it to the caller. A metrics
endpoint that silently isn't there is the failure we refuse: it is found only when the
dashboards go blank.

Workers are the exception (docs/metrics.md, "Several workers"): a process whose agent-enabled
ancestor holds the port (uvicorn `--workers`/`--reload` children, multiprocessing children) and
a forked child (gunicorn workers) serve their own `/metrics` on a free port, announced for
`introspect ps --prometheus-sd` and the `/sd` route of the configured port.

With `PROMETHEUS_MULTIPROC_DIR` set (gunicorn-style workers), `/metrics` serves
prometheus_client's `MultiProcessCollector` (the app's own metrics, aggregated over every
worker's files) plus this process's runtime metrics; see docs/metrics.md for exactly what is
and is not aggregated.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from prometheus_client import exposition
from prometheus_client.registry import REGISTRY, CollectorRegistry

from introspect.metrics.after_fork import AfterFork
from introspect.metrics.default_registry import multiproc_dir
from introspect.metrics.prometheus_collector import IntrospectCollector
from introspect.metrics.readings import AgentReadings
from introspect.metrics.scrape_server import PortInUse, ScrapeServer

log = logging.getLogger("introspect.metrics")


class MetricsEndpoint:
    """What `agent.extensions["metrics"]` holds: `url` (None without a port) and `stop()`."""

    def __init__(self, agent: Any, readings: AgentReadings, collector: IntrospectCollector,
                 registry: CollectorRegistry) -> None:
        self.agent = agent
        self.readings = readings
        self.collector = collector
        self.registry = registry
        self.server: ScrapeServer | None = None
        self.url: str | None = None
        self.port: int | None = None
        self._beat: Any = None
        self.stopped = False
        _ENDPOINTS.add(self)

    def serve(self, host: str, port: int) -> None:
        """Bind (UserError when the port is taken), then answer from the loop and the thread."""
        probe = self.agent.loop_probe
        from introspect.metrics.service_discovery import http_sd

        routes = {"/sd": lambda headers: http_sd(os.getpid(), headers)}
        server = ScrapeServer(host, port, self.render, probe.blocked_for, routes,
                              allowed_hosts=self.agent.config.metrics_hosts)
        self.server, self.url, self.port = server, server.url, server.port

        def beat() -> None:  # on the loop thread, every probe beat
            loop = probe.loop
            if loop is not None:
                server.on_loop_beat(loop)

        self._beat = beat
        probe.on_beat.append(beat)
        thread = server.start()
        if thread.ident is not None:
            self.agent.agent_thread_ids.add(thread.ident)

    def serve_as_worker(self, host: str) -> None:
        """A port of this worker's own; the app's metrics aggregated over a multiprocess
        directory stay on the configured port only (once, not once per worker)."""
        if multiproc_dir() is not None:
            self.registry = own_registry(self.collector)
        self.serve(host, 0)

    def after_fork_in_child(self) -> None:
        """The parent's server is gone in the child (scrape_server's own fork hook closed it):
        serve this worker's metrics on a port of its own and announce it."""
        if self.stopped or self.server is None or not getattr(self.agent, "running", False):
            return
        host = self.server.host
        if self._beat is not None:
            with contextlib.suppress(ValueError):
                self.agent.loop_probe.on_beat.remove(self._beat)
            self._beat = None
        self.server = None
        self.url = None
        try:
            self.serve_as_worker(host)
        except Exception as exc:  # the worker runs on without its own /metrics
            log.warning("introspect: worker %d serves no /metrics: %s", os.getpid(), exc)
            return
        server = getattr(self.agent, "server", None)
        if getattr(server, "_owner_pid", None) == os.getpid():
            server.announce()  # else the agent's own fork hook announces it, after this one

    def render(self, accept: str = "", served_by: str = "direct") -> tuple[bytes, str]:
        self.readings.count_scrape(served_by)
        encoder, content_type = exposition.choose_encoder(accept)
        return encoder(self.registry), content_type

    def stop(self) -> None:
        self.stopped = True
        if self._beat is not None:
            with contextlib.suppress(ValueError):
                self.agent.loop_probe.on_beat.remove(self._beat)
            self._beat = None
        if self.server is not None:
            self.server.stop()
        for registry in {id(REGISTRY): REGISTRY, id(self.registry): self.registry}.values():
            with contextlib.suppress(KeyError):
                registry.unregister(self.collector)


def own_registry(collector: IntrospectCollector) -> CollectorRegistry:
    """Only this process's runtime metrics (a worker under PROMETHEUS_MULTIPROC_DIR)."""
    from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

    registry = CollectorRegistry()
    for own in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(own)
    collector.registry = registry
    registry.register(collector)
    return registry


def serving_registry(collector: IntrospectCollector) -> CollectorRegistry:
    """The default registry; in multiprocess mode a fresh one aggregating every worker."""
    directory = multiproc_dir()
    if directory is None:
        return REGISTRY
    from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
    from prometheus_client.multiprocess import MultiProcessCollector

    if not os.path.isdir(directory):
        from introspect.errors import UserError

        raise UserError(f"PROMETHEUS_MULTIPROC_DIR={directory!r} is not a directory")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    for own in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(own)  # this process's own process_*, python_info, python_gc_*
    collector.registry = registry
    registry.register(collector)
    return registry


def start_for_agent(agent: Any) -> MetricsEndpoint:
    """With a metrics port or PROMETHEUS_MULTIPROC_DIR (`default_registry.start_for_agent`
    decides): registers the collector in the default registry (an app that serves it shows our
    metrics) and serves `/metrics` when the port is configured."""
    readings = AgentReadings(agent)
    collector = IntrospectCollector(readings, REGISTRY)
    REGISTRY.register(collector)
    endpoint: MetricsEndpoint | None = None
    try:
        endpoint = MetricsEndpoint(agent, readings, collector, serving_registry(collector))
        if agent.config.metrics_port is not None:
            host = agent.config.metrics_addr or "127.0.0.1"
            try:
                endpoint.serve(host, agent.config.metrics_port)
            except PortInUse:
                if not _held_by_ancestor(agent.config.metrics_port):
                    raise
                endpoint.serve_as_worker(host)
            _announce(agent, endpoint)
    except BaseException:
        if endpoint is not None:
            endpoint.stop()
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(collector)
        raise
    return endpoint


def _held_by_ancestor(port: int) -> bool:
    """Whether an agent-enabled ancestor serves /metrics on `port` (then this is a worker)."""
    import urllib.parse

    from introspect.protocol import discovery

    try:
        import psutil

        ancestors = {p.pid for p in psutil.Process().parents()}
    except Exception:
        ancestors = {os.getppid()}
    for ann in discovery.list_agents(clean=False):
        if ann.pid in ancestors and ann.metrics:
            if urllib.parse.urlsplit(ann.metrics).port == port:
                return True
    return False


def _announce(agent: Any, endpoint: MetricsEndpoint) -> None:
    """The agent announced itself before its extensions started: announce again, now with the
    /metrics URL, so `introspect ps` and file_sd generators find the (possibly ephemeral) port.
    The announcement reads `agent.extensions["metrics"]`, which `start_all` sets to this same
    endpoint right after we return."""
    announce = getattr(getattr(agent, "server", None), "announce", None)
    if callable(announce):
        agent.extensions["metrics"] = endpoint
        announce()


def collector() -> IntrospectCollector | None:
    """The running agent's collector, to register in a registry of your own (for example the
    `CollectorRegistry()` + `MultiProcessCollector` an app builds for its own endpoint)."""
    import introspect

    agent = introspect.get_agent()
    endpoint = agent.extensions.get("metrics") if agent is not None else None
    return getattr(endpoint, "collector", None)


_ENDPOINTS = AfterFork("after_fork_in_child", "metrics")
