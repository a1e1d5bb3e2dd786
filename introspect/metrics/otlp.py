"""The OpenTelemetry exporter: the catalog as instruments on an SDK `MeterProvider`, sent over OTLP.

Enabled by `--otlp` / `INTROSPECT_OTLP=1` / `start(otlp=True)`, configured by the standard
`OTEL_*` variables (checked first: a bad value is one clear error, see `otel_env`).

- An app that already set an SDK `MeterProvider` before the agent started keeps it: the
  instruments are added to it (its resource, readers and exporters). Otherwise the agent makes a
  private provider (never the global one, so the app can still set its own) with a periodic
  OTLP exporter and a Resource carrying `service.name` (`OTEL_SERVICE_NAME`, else the program
  name), `service.instance.id` and `process.pid`. A forked worker (gunicorn) gets a provider
  of its own with its own `process.pid` and `service.instance.id` (the parent's is shut down in
  the child); a spawned one (uvicorn `--workers`) starts its own agent anyway.
- Observable instruments are read by the SDK's exporter thread: the callbacks only make the same
  cheap, thread-safe reads as a Prometheus scrape (one reading shared by all callbacks of one
  export). The two histograms are recorded by us: loop lag on the probe's beat (loop thread,
  10/s); GC pauses are measured by our own `gc.callbacks` entry and recorded on the next beat
  or export (never inside the callback: see `on_gc`).
- An unreachable endpoint costs the exporter thread its timeouts; the app never waits for it,
  and stopping waits at most `SHUTDOWN_TIMEOUT_MS`.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import threading
import time
import uuid
from typing import Any

from introspect.errors import UserError
from introspect.metrics import otel_env
from introspect.metrics.after_fork import AfterFork
from introspect.metrics.catalog import OTEL, MetricSpec
from introspect.metrics.readings import AgentReadings

log = logging.getLogger("introspect.metrics")
SHUTDOWN_TIMEOUT_MS = 2000
READING_MAX_AGE = 0.5  # seconds: all callbacks of one export share one reading
PENDING_PAUSES = 1024  # GC pauses waiting to be recorded; beyond, the oldest are dropped
METER_NAME = "introspect"


def start_for_agent(agent: Any) -> OtlpExporter | None:
    if not agent.config.otlp:
        return None
    settings = otel_env.check()
    if settings.disabled:
        log.warning("introspect: OTLP export asked for, but OTEL_SDK_DISABLED=true")
        return None
    try:
        from opentelemetry import metrics as otel_metrics
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:
        raise UserError("--otlp needs the OpenTelemetry SDK: pip install 'introspect[otlp]'"
                        ) from None
    existing = otel_metrics.get_meter_provider()
    if isinstance(existing, MeterProvider):
        return OtlpExporter(agent, existing, owned=False)
    return OtlpExporter(agent, _own_provider(settings), owned=True)


def _own_provider(settings: otel_env.OtelSettings) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = {"service.instance.id": str(uuid.uuid4()),
                                  "process.pid": os.getpid()}
    if settings.service_name is not None:
        attributes["service.name"] = settings.service_name
    resource = Resource.create(attributes)
    reader = PeriodicExportingMetricReader(_exporter(settings.protocol))
    return MeterProvider(resource=resource, metric_readers=[reader])


def _exporter(protocol: str) -> Any:
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )
        except ImportError:
            raise UserError("OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs "
                            "opentelemetry-exporter-otlp-proto-grpc (pip install it), or use "
                            "http/protobuf") from None
        return OTLPMetricExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    except ImportError:
        raise UserError("--otlp needs opentelemetry-exporter-otlp-proto-http: "
                        "pip install 'introspect[otlp]'") from None
    return OTLPMetricExporter()


class OtlpExporter:
    """What `agent.extensions["otlp"]` holds; `stop()` ends the export (bounded wait)."""

    url = None  # the metrics URL is the Prometheus extension's; OTLP pushes

    def __init__(self, agent: Any, provider: Any, owned: bool) -> None:
        self.agent = agent
        self.provider = provider
        self.owned = owned
        self.readings = AgentReadings(agent)
        self.enabled = True
        self._reused: tuple[float, dict[str, list[tuple[tuple[str, ...], float]]]] = (0.0, {})
        self.histograms: dict[str, Any] = {}
        self._instrument_all()
        _EXPORTERS.add(self)

    def _instrument_all(self) -> None:
        meter = self.provider.get_meter(METER_NAME)
        self.histograms = {}
        for spec in OTEL:
            if spec.prom not in self.readings.disabled:
                self._instrument(meter, spec)
        self._hook_histograms()
        self._note_exporter_thread()

    def after_fork_in_child(self) -> None:
        """A forked worker: the parent's provider would export this worker's numbers under the
        parent's `process.pid` and instance id. Shut it down (its last export runs on a thread:
        never block the fork) and export from a provider of this process's own."""
        if not self.enabled or not self.owned:
            return  # an app's own provider: its resource is the app's business
        old = self.provider
        threading.Thread(target=old.shutdown, kwargs={"timeout_millis": SHUTDOWN_TIMEOUT_MS},
                         name="introspect-otlp-handover", daemon=True).start()
        self._unhook_histograms()
        self.provider = _own_provider(otel_env.check())
        self._instrument_all()

    # --- instruments -------------------------------------------------------------------------
    def _instrument(self, meter: Any, spec: MetricSpec) -> None:
        kwargs = {"unit": spec.unit, "description": spec.help}
        name = spec.otel
        if spec.instrument == "histogram":
            self.histograms[spec.prom] = meter.create_histogram(
                name, explicit_bucket_boundaries_advisory=list(spec.buckets), **kwargs)
            return
        create = {"counter": meter.create_observable_counter,
                  "updowncounter": meter.create_observable_up_down_counter,
                  "gauge": meter.create_observable_gauge}[spec.instrument]
        create(name, callbacks=[self._callback(spec)], **kwargs)

    def _callback(self, spec: MetricSpec) -> Any:
        from opentelemetry.metrics import Observation

        attributes = spec.attributes
        owner = os.getpid()

        def observe(_options: Any) -> list[Any]:
            if not self.enabled or os.getpid() != owner:  # a parent's instrument after fork
                return []
            try:
                self._record_pauses()
                samples = self._samples(spec)
                return [Observation(value, dict(zip(attributes, labels, strict=True)))
                        for labels, value in samples]
            except Exception as exc:  # contained: the export goes on without this instrument
                self.agent.collector_errors.record("metrics.otlp", exc)
                return []

        return observe

    def _samples(self, spec: MetricSpec) -> list[tuple[tuple[str, ...], float]]:
        if spec.source == "prometheus_client":
            return self._reused_samples().get(spec.prom, [])
        previous = self.readings._cached
        started = time.perf_counter()
        reading = self.readings.read(max_age=READING_MAX_AGE)
        if reading is not previous:
            self.histograms["introspect_agent_collect_seconds"].record(
                time.perf_counter() - started)
        return reading.samples.get(spec.prom, [])

    def _reused_samples(self) -> dict[str, list[tuple[tuple[str, ...], float]]]:
        """prometheus_client's own process and gc collectors: the same numbers as /metrics."""
        taken, cached = self._reused
        if time.monotonic() - taken < READING_MAX_AGE:
            return cached
        from prometheus_client import GC_COLLECTOR, PROCESS_COLLECTOR

        out: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for collector in (PROCESS_COLLECTOR, GC_COLLECTOR):
            for metric in collector.collect():
                for sample in metric.samples:
                    out.setdefault(sample.name, []).append(
                        (tuple(sample.labels.values()), sample.value))
        self._reused = (time.monotonic(), out)
        return out

    # --- recorded histograms ---------------------------------------------------------------
    def _hook_histograms(self) -> None:
        lag = self.histograms["python_asyncio_loop_lag_seconds"]
        probe = self.agent.loop_probe

        pause = self.histograms["python_gc_pause_seconds"]
        attrs = [{"cpython.gc.generation": str(gen)} for gen in range(3)]
        started = [0.0]
        pending: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=PENDING_PAUSES)

        def on_gc(phase: str, info: dict) -> None:
            # Never records here: a collection can start inside the SDK's own code, e.g. the
            # exporter thread collecting this very histogram under its lock; recording then
            # deadlocked that thread, and the next collection on the app's thread waited
            # for the lock forever. The pause waits in `pending` (a deque append takes no lock).
            if phase == "start":
                started[0] = time.perf_counter()
            elif started[0] and self.enabled:
                pending.append((time.perf_counter() - started[0],
                                info.get("generation", 0) % 3))
                started[0] = 0.0

        def record_pauses() -> None:
            """Where no SDK lock is held: each loop beat, and each export's callbacks (before
            the SDK collects the histograms), so a program without a loop exports them too."""
            # Only the pauses there now: recording allocates, and under an aggressive GC
            # threshold each record starts a collection whose pause lands here again (a
            # `while pending` never ended: both threads spun in it).
            for _ in range(len(pending)):
                try:
                    seconds, gen = pending.popleft()
                except IndexError:  # another thread took the last one
                    return
                with contextlib.suppress(Exception):
                    pause.record(seconds, attrs[gen])

        def on_beat() -> None:  # loop thread, once per probe interval
            if self.enabled:
                lag.record(probe.last_lag)
                record_pauses()

        self._on_beat = on_beat
        probe.on_beat.append(on_beat)
        self._record_pauses = record_pauses
        self._on_gc = on_gc
        gc.callbacks.append(on_gc)

    def _note_exporter_thread(self) -> None:
        """The SDK's export thread is ours when we own the provider (threads view marks it)."""
        if not self.owned:
            return
        config = getattr(self.provider, "_sdk_config", None)
        for reader in getattr(config, "metric_readers", ()):
            thread = getattr(reader, "_daemon_thread", None)
            if thread is not None and thread.ident is not None:
                self.agent.agent_thread_ids.add(thread.ident)

    def _unhook_histograms(self) -> None:
        with contextlib.suppress(ValueError):
            self.agent.loop_probe.on_beat.remove(self._on_beat)
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)

    # --- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        if not self.enabled:
            return
        self._unhook_histograms()
        if self.owned:  # a last export, waited for at most SHUTDOWN_TIMEOUT_MS
            try:
                self.provider.shutdown(timeout_millis=SHUTDOWN_TIMEOUT_MS)
            except Exception as exc:
                log.debug("introspect: OTLP shutdown: %r", exc)
        self.enabled = False  # instruments added to an app's provider cannot be removed


_EXPORTERS = AfterFork("after_fork_in_child", "OTLP")
