"""Run a function once a module is imported: now if it already is, else right after the app's
own import executes it.

Why: `introspect.start()` must not import what only an optional feature needs. Every object
the agent adds to the heap is walked by each of the host's full GC collections; importing
prometheus_client, multiprocessing and friends at start added ~7k of them to a service that
may never use them. Parts that must act on such a module (our collector joins
prometheus_client's default registry; multiprocessing queues and process pools get their
discovery wrappers) wait for the app to import it instead.

How: one finder at the front of `sys.meta_path`. For a watched name only, it asks the finders
behind it for the spec and wraps the spec's loader so that, after the module's code has run,
the callbacks run (in the importing thread, still under that module's import lock, so no
other thread sees the module before the callbacks have finished). The module's `__loader__`
and `__spec__.loader` are put back to the real loader. Any other name costs one dict lookup.
A callback that raises is logged at debug level; the import itself never fails because of us.
Chosen over polling `sys.modules` from a periodic thread: an app that imports
prometheus_client and calls `generate_latest()` right away must see our families, and a
multiprocessing queue created right after the import must be discovered. (A finder the app puts
ahead of ours after start() and that loads a watched module itself hides that import from us.)
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger("introspect.agent")

Callback = Callable[[ModuleType], None]

_lock = threading.Lock()
_waiting: dict[str, list[Callback]] = {}


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def when_imported(name: str, callback: Callback) -> Callable[[], None]:
    """Call `callback(module)` once `name` is imported (at once if it already is).
    Returns a function that cancels the wait (a no-op once the callback has run)."""
    module = _imported(name)
    if module is not None:
        _call(name, callback, module)
        return _nothing
    with _lock:
        _waiting.setdefault(name, []).append(callback)
        if not any(finder is _FINDER for finder in sys.meta_path):
            sys.meta_path.insert(0, _FINDER)
    module = _imported(name)  # imported by another thread meanwhile: do not wait
    if module is not None and _take(name, callback):
        _call(name, callback, module)

    def cancel() -> None:
        _take(name, callback)

    return cancel


def waiting() -> dict[str, int]:
    """Module name -> callbacks still waiting (for tests and diagnostics)."""
    with _lock:
        return {name: len(callbacks) for name, callbacks in _waiting.items()}


def _nothing() -> None:
    return None


def _imported(name: str) -> ModuleType | None:
    """The module if it is in `sys.modules`; one another thread is still executing is waited
    for (importlib takes its module lock), so a callback never sees it half made."""
    module = sys.modules.get(name)
    if module is None:
        return None
    if getattr(getattr(module, "__spec__", None), "_initializing", False):
        try:
            module = importlib.import_module(name)
        except Exception:
            return None
    return module


def _take(name: str, callback: Callback) -> bool:
    """Remove one waiting callback; True if it was still waiting. The finder leaves
    `sys.meta_path` when nothing waits."""
    with _lock:
        callbacks = _waiting.get(name)
        if not callbacks or callback not in callbacks:
            return False
        callbacks.remove(callback)
        if not callbacks:
            del _waiting[name]
        if not _waiting:
            _remove_finder()
        return True


def _take_all(name: str) -> list[Callback]:
    with _lock:
        callbacks = _waiting.pop(name, [])
        if not _waiting:
            _remove_finder()
        return callbacks


def _remove_finder() -> None:
    try:
        sys.meta_path.remove(_FINDER)
    except ValueError:
        pass


def _call(name: str, callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as exc:  # never into the app's import
        log.debug("introspect: after importing %s: %r", name, exc)


class _Finder:
    """Finds nothing itself: for a watched name, the next finder's spec with a wrapped loader."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _waiting:
            return None
        try:
            spec = _spec_from_others(self, fullname, path, target)
        except Exception:
            return None  # let the import system report it the way it would without us
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname)
        return spec


def _spec_from_others(finder: _Finder, fullname: str, path: Any, target: Any) -> Any:
    found_self = False
    for other in list(sys.meta_path):
        if other is finder:
            found_self = True
            continue
        if not found_self:
            continue
        find_spec = getattr(other, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _Loader:
    """The real loader's behaviour, then the callbacks; attributes fall through to it."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)

    def create_module(self, spec: Any) -> Any:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        try:
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._loader
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._loader
        except Exception:
            pass
        self._loader.exec_module(module)
        imported = sys.modules.get(self._name, module)  # a module may replace itself there
        for callback in _take_all(self._name):
            _call(self._name, callback, imported)


_FINDER = _Finder()
