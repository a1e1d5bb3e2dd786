"""Auto-discovery of queues and executors created after the agent starts.

The constructors of `asyncio.Queue`, `queue.Queue`, `multiprocessing.queues.Queue` and of the
`concurrent.futures` executors are wrapped so each new instance is registered (weakly, with its
creation site). `queue.SimpleQueue` is a C type: the module attribute is replaced by a thin
subclass. Everything is restored by `uninstall()`. Registration never raises into the app.
multiprocessing and `concurrent.futures.process` are wrapped when the app imports them
(`import_hooks`), not imported by us: they are ~2k objects in every GC of the host.
"""

from __future__ import annotations

import asyncio

# Imported now, not when the app first uses it: its fork hook must come before ours and the
# exporters' (after_fork.py), which make thread pools in the child (the OpenTelemetry SDK's
# Resource.create does); registered after them, the child waits forever on its shutdown lock.
import concurrent.futures.thread
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from introspect.agent import import_hooks
from introspect.agent.collectors import frames as fr
from introspect.agent.collectors.queue_owners import QueueCallSampler, QueueOwners

_MP_CONTEXT = os.path.join("multiprocessing", "context.py")
# Threads of the agent and of the exporters it starts; queues they create are not the app's.
AGENT_THREAD_PREFIXES = ("introspect", "OtelPeriodicExportingMetricReader", "OtelBatch")


class _KeyedRef(weakref.ref):
    """A weak reference that knows its registry key: one shared callback for all entries
    instead of a closure per entry (a function, its cell and defaults: three more objects
    for the collector per queue an app makes)."""

    __slots__ = ("key",)

    def __new__(cls, obj: Any, callback: Callable[[Any], None], key: int) -> _KeyedRef:
        return super().__new__(cls, obj, callback)

    def __init__(self, obj: Any, callback: Callable[[Any], None], key: int) -> None:
        super().__init__(obj, callback)
        self.key = key


class Registry:
    """Weakly held objects with a name and a creation site."""

    def __init__(self, max_items: int = 10_000) -> None:
        self._items: dict[int, tuple[weakref.ref, str, str, float, bool]] = {}
        self._lock = threading.Lock()
        self.max_items = max_items
        self.dropped = 0
        self.owners: QueueOwners | None = None  # set for the queue registry by DiscoveryHooks
        self.queue_calls: QueueCallSampler | None = None  # likewise
        self._on_gone = self._gone  # one bound method, shared by every entry's reference

    def _gone(self, ref: _KeyedRef) -> None:
        with self._lock:
            entry = self._items.get(ref.key)
            if entry is not None and entry[0] is ref:
                del self._items[ref.key]

    def add(self, obj: Any, name: str, site: str, watched: bool = False) -> None:
        key = id(obj)
        with self._lock:
            if key not in self._items and len(self._items) >= self.max_items:
                self.dropped += 1
                return
            self._items[key] = (_KeyedRef(obj, self._on_gone, key), name, site, time.time(),
                                watched)

    def rename(self, obj: Any, name: str) -> bool:
        with self._lock:
            entry = self._items.get(id(obj))
            if entry is None or entry[0]() is not obj:
                return False
            self._items[id(obj)] = (entry[0], name, entry[2], entry[3], True)
            return True

    def items(self) -> list[tuple[Any, str, str, float, bool]]:
        with self._lock:
            entries = list(self._items.values())
        out = []
        for ref, name, site, created, watched in entries:
            obj = ref()
            if obj is not None:
                out.append((obj, name, site, created, watched))
        return out


def creation_site(obj: Any, depth: int = 2) -> tuple[str, bool]:
    """(`file:line`, internal) of the code that created `obj`; internal = made by the stdlib."""
    frame = sys._getframe(depth)
    while frame is not None and (
        (frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is obj)
        or frame.f_code.co_filename.endswith(_MP_CONTEXT)
    ):
        frame = frame.f_back
    if frame is None:
        return "?", True
    filename = frame.f_code.co_filename
    known = _SITE_FILES.get(filename)  # one lookup per queue an app makes, not three
    if known is None:
        known = (stable_path(filename), fr.is_stdlib(filename) or fr.is_agent(filename))
        if len(_SITE_FILES) < _STABLE_PATHS_LIMIT:
            _SITE_FILES[filename] = known
    return f"{known[0]}:{frame.f_lineno}", known[1]


_STABLE_PATHS: dict[str, str] = {}
_STABLE_PATHS_LIMIT = 4096
_SITE_FILES: dict[str, tuple[str, bool]] = {}  # filename -> (stable path, internal)


def stable_path(filename: str) -> str:
    """`filename` as the same label wherever the service is deployed: relative to the import
    root holding it (site-packages, the project on sys.path, the working directory), so
    `/srv/releases/42/.venv/lib/python3.12/site-packages/aiohttp/client.py` is
    `aiohttp/client.py` and a new release path or venv makes no new metric series."""
    known = _STABLE_PATHS.get(filename)
    if known is not None:
        return known
    shown = filename
    if os.path.isabs(filename):
        best = ""
        try:
            cwd = os.getcwd()
        except OSError:  # deleted under us
            cwd = ""
        for root in (cwd, *sys.path):
            if root and os.path.isabs(root) and len(root) > len(best) and \
                    filename.startswith(root.rstrip(os.sep) + os.sep):
                best = root.rstrip(os.sep)
        if best:
            shown = filename[len(best) + 1:]
    if len(_STABLE_PATHS) < _STABLE_PATHS_LIMIT:
        _STABLE_PATHS[filename] = shown
    return shown


class _SimpleQueueHook:
    original: type | None = None


class DiscoveryHooks:
    def __init__(self, queues: Registry, executors: Registry,
                 on_error: Callable[[str, BaseException], None]) -> None:
        self.queues = queues
        self.executors = executors
        self.owners = queues.owners = QueueOwners()
        self._on_error = on_error
        self._saved: list[tuple[Any, str, Any]] = []
        self._cancels: list[Callable[[], None]] = []
        self._saving = threading.Lock()  # an app thread's import may wrap while we unwrap

    def _wrap_init(self, cls: type, on_new: Callable[[Any], None]) -> None:
        original = cls.__dict__.get("__init__")
        if original is None or getattr(original, "_introspect_wrapped", False):
            return

        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
            try:
                on_new(self)
            except Exception as exc:
                hooks_on_error("discovery", exc)

        hooks_on_error = self._on_error
        __init__._introspect_wrapped = True  # type: ignore[attr-defined]
        __init__.__wrapped__ = original  # type: ignore[attr-defined]
        __init__.__doc__ = original.__doc__
        with self._saving:
            self._saved.append((cls, "__init__", original))
            cls.__init__ = __init__

    def _new_queue(self, obj: Any) -> None:
        if threading.current_thread().name.startswith(AGENT_THREAD_PREFIXES):
            return  # the agent's own plumbing (e.g. the OTLP exporter's connection pool)
        site, internal = creation_site(obj, depth=3)
        if not internal:
            self.queues.add(obj, site, site)

    def _new_executor(self, obj: Any) -> None:
        site, internal = creation_site(obj, depth=3)
        prefix = getattr(obj, "_thread_name_prefix", "") or ""
        if internal and "asyncio" in site and prefix.startswith("asyncio"):
            name = "asyncio-default"
        elif prefix and not prefix.startswith("ThreadPoolExecutor-"):
            name = prefix
        else:
            name = site
        self.executors.add(obj, name, site)

    def install(self) -> None:
        for cls in (asyncio.Queue, queue.Queue):
            self._wrap_init(cls, self._new_queue)
        owners = self.owners
        self.queues.queue_calls = QueueCallSampler(lambda: owners)  # windows: the watchdog
        self._wrap_init(concurrent.futures.thread.ThreadPoolExecutor, self._new_executor)
        for module, attr, on_new in (
                ("multiprocessing.queues", "Queue", self._new_queue),
                ("concurrent.futures.process", "ProcessPoolExecutor", self._new_executor)):
            self._cancels.append(import_hooks.when_imported(
                module, lambda mod, attr=attr, on_new=on_new:
                self._wrap_init(getattr(mod, attr), on_new)))
        original = queue.SimpleQueue
        if not getattr(original, "_introspect_wrapped", False):
            new_queue = self._new_queue

            class SimpleQueue(original):  # type: ignore[misc, valid-type]
                __slots__ = ()
                _introspect_wrapped = True
                __doc__ = original.__doc__

                def __init__(self) -> None:
                    try:
                        new_queue(self)
                    except Exception:
                        pass

            SimpleQueue.__module__ = "queue"
            self._saved.append((queue, "SimpleQueue", original))
            queue.SimpleQueue = SimpleQueue  # type: ignore[misc]

    def uninstall(self) -> None:
        cancels, self._cancels = self._cancels, []
        for cancel in cancels:
            cancel()
        calls, self.queues.queue_calls = self.queues.queue_calls, None
        if calls is not None:
            calls.stop()
        with self._saving:
            for owner, attr, original in reversed(self._saved):
                setattr(owner, attr, original)
            self._saved.clear()


def queue_row(obj: Any, name: str, site: str, created: float, watched: bool) -> dict | None:
    """Length, capacity and waiters of a queue-like object; None if it can't be read."""
    kind = "other"
    getters = putters = 0
    capacity = 0
    if isinstance(obj, asyncio.Queue):
        kind = "asyncio"
        length = obj.qsize()
        capacity = obj.maxsize
        getters = sum(1 for w in obj._getters if not w.done())  # type: ignore[attr-defined]
        putters = sum(1 for w in obj._putters if not w.done())  # type: ignore[attr-defined]
    elif isinstance(obj, queue.Queue):
        kind = "thread"
        length = obj.qsize()
        capacity = obj.maxsize
        getters = len(getattr(obj.not_empty, "_waiters", ()))
        putters = len(getattr(obj.not_full, "_waiters", ()))
    elif _is_instance(obj, "multiprocessing.queues", "Queue"):
        kind = "multiprocessing"
        try:
            length = obj.qsize()
        except NotImplementedError:
            length = -1
        capacity = getattr(obj, "_maxsize", 0)
        if capacity >= 2**31 - 1:
            capacity = 0
    elif type(obj).__name__ == "SimpleQueue" and hasattr(obj, "qsize"):
        kind = "simple"
        length = obj.qsize()
    elif hasattr(obj, "qsize"):
        length = int(obj.qsize())
        capacity = int(getattr(obj, "maxsize", 0) or 0)
    elif hasattr(obj, "__len__"):
        length = len(obj)
        capacity = int(getattr(obj, "maxlen", 0) or getattr(obj, "maxsize", 0) or 0)
    else:
        return None
    return {"name": name, "type": kind, "length": length, "capacity": max(0, capacity or 0),
            "getters": getters, "putters": putters, "created_at": site, "watched": watched}


def executor_row(obj: Any, name: str, site: str) -> dict:
    if isinstance(obj, concurrent.futures.thread.ThreadPoolExecutor):
        threads = list(obj._threads)
        frames = sys._current_frames()
        # A worker waiting for work sits in `_worker` itself (the queue get is C code); a busy
        # one is inside the work item's `run`.
        busy = sum(1 for t in threads if (f := frames.get(t.ident or -1)) is not None
                   and f.f_code.co_name != "_worker")
        return {"name": name, "type": "thread", "queue_length": obj._work_queue.qsize(),
                "workers": len(threads), "max_workers": obj._max_workers,
                "busy": busy, "created_at": site}
    processes = getattr(obj, "_processes", None) or {}
    pending = len(getattr(obj, "_pending_work_items", {}) or {})
    workers = len(processes)
    return {"name": name, "type": "process", "queue_length": max(0, pending - workers),
            "workers": workers, "max_workers": obj._max_workers,
            "busy": min(pending, workers), "created_at": site}


def queue_rows(queues: Registry, on_error: Callable[[str, BaseException], None]
               ) -> list[tuple[Any, dict]]:
    """(queue, `queue_row`) of every readable queue, largest backlog first."""
    rows = []
    for obj, name, site, created, watched in queues.items():
        try:
            row = queue_row(obj, name, site, created, watched)
        except Exception as exc:
            on_error("queues", exc)
            continue
        if row is not None:
            rows.append((obj, row))
    rows.sort(key=lambda pair: (-pair[1]["length"], pair[1]["name"]))
    return rows


def executor_rows(executors: Registry, on_error: Callable[[str, BaseException], None]
                  ) -> list[dict]:
    """`executor_row` of every executor not shut down."""
    rows = []
    for obj, name, site, _created, _watched in executors.items():
        if getattr(obj, "_shutdown", False) or getattr(obj, "_shutdown_thread", False):
            continue
        try:
            rows.append(executor_row(obj, name, site))
        except Exception as exc:
            on_error("executors", exc)
    return rows


def _is_instance(obj: Any, module_name: str, class_name: str) -> bool:
    """isinstance for a class whose module may not be imported (then nothing is one)."""
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None)
    return isinstance(cls, type) and isinstance(obj, cls)
