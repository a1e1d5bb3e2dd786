"""Imports the agent makes after start: at the first client, the first block, the first finding
(issue 17: what start() imports stays in the host's heap for every full GC to walk).

The fork hazard they bring: a module that one thread is still executing when another forks
stays half-made in the child, its import lock held by a thread that does not exist there, and
the child's own import of it waits forever — msgspec, json or decimal may be the app's modules
too. So a fork waits (at most FORK_WAIT_SECONDS) for an import made here to finish.

The lock below is taken only around these imports and by the fork hook, never with another
lock of the agent held. An import may wait for a module the app's thread is importing
(importlib's per-module locks); the bounds keep that from ever becoming a deadlock: a late
import waits at most LOCK_WAIT_SECONDS for another one, then imports anyway.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

from introspect.agent import permanent

FORK_WAIT_SECONDS = 2.0
LOCK_WAIT_SECONDS = 5.0

_lock = threading.RLock()  # reentrant: a late import may run code that makes another
_held_for_fork = False


def late_import(name: str) -> ModuleType:
    """`importlib.import_module(name)`, with the fork waiting for it if it is not done yet."""
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing",
                                          False):
        return module
    lock = _lock
    locked = lock.acquire(timeout=LOCK_WAIT_SECONDS)
    try:
        with permanent.note_imports() as added:
            module = importlib.import_module(name)
    finally:
        if locked:
            lock.release()
    # What this import brought is settled out of the collector's way now (small: one
    # module and what it needs); the bulk from start() is the server thread's (lifecycle).
    permanent.settle_imported(only=added)
    return module


def _before_fork() -> None:
    global _held_for_fork
    _held_for_fork = _lock.acquire(timeout=FORK_WAIT_SECONDS)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        _lock.release()


def _after_fork_in_child() -> None:
    global _lock, _held_for_fork
    _lock = threading.RLock()
    _held_for_fork = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
