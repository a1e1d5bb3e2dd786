"""Objects that must act in a forked child (a gunicorn worker): the scrape server forgets the
parent's socket, the /metrics endpoint and the OTLP exporter start this worker's own. One
registry per kind of object, hooked once at import; a failure is logged at debug level and
never raised into the child."""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

log = logging.getLogger("introspect")


class AfterFork:
    """Call `method` on every registered object in a forked child, in registration order of
    the registries (Python runs `after_in_child` hooks in the order they were registered)."""

    def __init__(self, method: str, what: str) -> None:
        self._method = method
        self._what = what
        self._objects: weakref.WeakSet[Any] = weakref.WeakSet()
        os.register_at_fork(after_in_child=self._run)

    def add(self, obj: Any) -> None:
        self._objects.add(obj)

    def _run(self) -> None:
        for obj in list(self._objects):
            try:
                getattr(obj, self._method)()
            except Exception as exc:  # never into the forked child
                log.debug("introspect: %s after fork: %r", self._what, exc)
