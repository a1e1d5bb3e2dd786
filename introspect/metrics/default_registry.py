"""The "metrics" extension's entry point, which imports prometheus_client only when it is used.

With a metrics port (or `PROMETHEUS_MULTIPROC_DIR`) `introspect.metrics.prometheus` serves
`/metrics` as before. Without one (the default) the only promise is that an app serving
prometheus_client's default registry shows our families; so our collector joins that registry
when the app imports prometheus_client: at start if it already has, else from its import
(`introspect.agent.import_hooks`). An app that never imports it pays nothing for it (the
package and what it pulls in, http/email/wsgiref/socketserver, are ~5k objects that every full
GC of the host would walk).
"""

from __future__ import annotations

import contextlib
import os
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from introspect.agent import import_hooks

if TYPE_CHECKING:
    from introspect.metrics.prometheus_collector import IntrospectCollector
    from introspect.metrics.readings import AgentReadings

MULTIPROC_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def multiproc_dir() -> str | None:
    for name in MULTIPROC_ENV:
        value = os.environ.get(name)
        if value:
            return value
    return None


def start_for_agent(agent: Any) -> Any:
    if agent.config.metrics_port is not None or multiproc_dir() is not None:
        from introspect.metrics import prometheus

        return prometheus.start_for_agent(agent)
    return DefaultRegistryMember(agent)


class DefaultRegistryMember:
    """`agent.extensions["metrics"]` without a metrics port: `url` is None; `collector` is
    None until prometheus_client is imported, then the collector in its default registry."""

    url: str | None = None
    port: int | None = None

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.readings: AgentReadings | None = None
        self.collector: IntrospectCollector | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._cancel = import_hooks.when_imported("prometheus_client", self._register)

    def _register(self, prometheus_client: ModuleType) -> None:
        """In the thread importing prometheus_client, right after its code ran."""
        from introspect.metrics.prometheus_collector import IntrospectCollector
        from introspect.metrics.readings import AgentReadings

        registry = prometheus_client.REGISTRY
        with self._lock:
            if self._stopped or self.collector is not None:
                return
            readings = AgentReadings(self.agent)
            collector = IntrospectCollector(readings, registry)
            registry.register(collector)
            self.readings, self.collector = readings, collector

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            collector = self.collector
        self._cancel()
        if collector is not None and collector.registry is not None:
            with contextlib.suppress(KeyError):
                collector.registry.unregister(collector)
