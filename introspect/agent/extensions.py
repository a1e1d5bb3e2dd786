"""Optional parts of the agent started after the core: exporters and the console. (The
detectors are the agent's own typed attributes: `agent.blocking`, `.sampler`, `.exact`.)

Each entry is `module:function` taking the Agent and returning an object with `stop()` or
None (disabled by config / dependency missing), and the config flag that enables it (None:
always). A disabled extension's module is not even imported: what start() imports stays in the
host's heap, walked by every full GC. A failing extension is logged and counted; it never stops
the agent or the host.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from introspect.errors import UserError
from introspect.textsafe import escape_for_log

log = logging.getLogger("introspect.agent")

# name → ("module:function", enabling config flag); a module that does not exist is skipped.
EXTENSIONS: dict[str, tuple[str, str | None]] = {
    "metrics": ("introspect.metrics.default_registry:start_for_agent", None),
    "otlp": ("introspect.metrics.otlp:start_for_agent", "otlp"),
    "console": ("introspect.agent.console.bridge:start_for_agent", "console"),
}


def start_all(agent: Any) -> None:
    for name, (target, flag) in EXTENSIONS.items():
        if flag is not None and not getattr(agent.config, flag):
            continue
        module_name, _, func_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        try:
            started = getattr(module, func_name)(agent)
        except UserError:
            raise  # a misconfiguration the user must hear about (e.g. metrics port in use)
        except Exception as exc:
            agent.collector_errors.record(name, exc)
            log.warning("introspect: %s did not start: %s", name, escape_for_log(exc))
            continue
        if started is not None:
            agent.extensions[name] = started


def stop_all(agent: Any) -> None:
    for name, ext in reversed(list(agent.extensions.items())):
        try:
            ext.stop()
        except Exception as exc:
            log.warning("introspect: stopping %s failed: %s", name, escape_for_log(exc))
    agent.extensions.clear()
