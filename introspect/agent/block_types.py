"""The protocol types the blocking detector builds, imported when it first builds one.

Why: msgspec and the snapshot structs add ~2,300 GC-tracked objects that every full
collection of the host then walks (issue 17); a service whose loop never blocks never needs
them. `BlockingEvent`, `Frame` and `TaskRef` here are called like the classes; `msgspec` gives
the real module's attributes. The first call imports in the calling thread (the watchdog), which
needs nothing from the loop thread (`late_imports` says how a fork meanwhile is handled).
"""

from __future__ import annotations

from typing import Any

from introspect.agent.late_imports import late_import


class _DeferredClass:
    """Calls `module.name`, imported at the first call."""

    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name
        self._target: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        target = self._target
        if target is None:
            target = self._target = getattr(late_import(self._module), self._name)
        return target(*args, **kwargs)


class _DeferredModule:
    """Attributes of `msgspec`, imported at the first lookup."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        late_import("msgspec.structs")  # the submodule blocking.py uses
        return getattr(late_import("msgspec"), name)


BlockingEvent = _DeferredClass("introspect.protocol.snapshot", "BlockingEvent")
Frame = _DeferredClass("introspect.protocol.snapshot", "Frame")
TaskRef = _DeferredClass("introspect.protocol.snapshot", "TaskRef")
msgspec = _DeferredModule()
