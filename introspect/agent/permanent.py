"""The agent's own objects, moved out of the collector's way (issue 17).

A full collection walks every object the collector tracks. A started agent brings ~6,000 of
its own (its modules and what they import: msgspec, decimal, uuid... in a host that had not
loaded them), and every full collection of the app walked them: under task churn that was
40 % more time paused in generation 2 in a bare asyncio host. The C side (_gc_accel.c) moves
objects out of the generation lists into lists of its own; they stay tracked (see the C file
for why that is safe), and in two lists:

**Definitions, for good** (`settle_imported`, `definitions`): modules, their namespaces,
classes, functions, descriptors, constant tuples — they live as long as the process and can
never be garbage. From each module the agent imported (`note_imports`), and nothing else:
- the module, its namespace, its spec and loader (and the spec's own lists);
- the functions and classes it defines (`__module__` is one of those modules), their
  namespaces, bases and MRO, defaults, closures, descriptors, properties and constant tuples;
  the definitional objects a class carries (dataclass fields and their metadata, msgspec
  struct info, enum members, namedtuple field getters);
- containers the module or a class binds (the container, not what it holds), and the module's
  own bound-method aliases (`seed = _inst.seed`, not `_inst`);
- the weak references to those classes (their entries in their bases' subclass registries and
  in ABC caches), which die with the class.
The module set is what the agent's own imports brought in: those of the thread running start()
while it runs, and those of `late_import` (a meta-path finder notes them, `note_imports`); a
module the app imports from another thread at the same moment is not among them.

**Run-time state, until stop()** (`settle_runtime`, `release_runtime`): what the agent made
at run time and holds while it runs, found from the Agent instance, its modules' namespaces
and the path-importer cache entries of its own directories (`runtime_objects`): instances of
the agent's classes (its collectors, detectors, server, registries, the events it keeps up to
`recent_events`), and the plain containers, cells, closures, bound methods, weak references,
weak dictionaries, events and conditions, sockets and patterns they hold; the FileFinders of
its directories and their caches. Never the app's objects: an object of any other type (the
app's, asyncio's: loops — the agent's own private loop too —, tasks, futures, handles,
transports, frames) is neither settled nor looked into, so what the agent refers to of the
app's (its loop, a task, a weakly held queue) stays in the generations. Left out too: the
caches the agent's imports filled in other libraries (typing's generic aliases, re's cache,
slot wrappers in the standard library's class namespaces: theirs to replace), and the
wrappers the agent installs into asyncio, os and threading while it runs (reachable from
those modules only: finding them would mean walking the app's modules).

A settled cycle is never collected, and run-time state changes: an object the agent drops is
freed by its reference count as usual (it unlinks itself from the list), but one that was part
of a reference cycle would stay. So the server thread settles the run-time state again every
30 s (lifecycle.py): each pass first moves the whole run-time list back into the oldest
generation, then settles what is reachable now, so what was dropped since is the collector's
again at most one pass later (the cost: a few ms of the server thread's time per pass). stop()
moves the list back for good (`release_runtime`): after stop() the agent is collectable.
Definitions stay settled (a late import's too: they cannot be garbage).

The effect for the app: full collections walk its own heap, as without the agent; the agent's
settled objects no longer appear in `gc.get_objects()` or `gc.get_referrers()`. With no C
compiler, or an interpreter whose collector cannot leave objects out (free-threaded builds,
an incremental collector: `available()` false), nothing moves.
"""

from __future__ import annotations

import collections
import enum
import gc
import os
import re
import socket
import sys
import threading
import time
import types
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

try:
    from introspect.agent import _gc_accel
except ImportError:  # pragma: no cover - no C compiler: the heap stays as it is
    _gc_accel = None  # type: ignore[assignment]

# Kinds that are parts of a definition: followed, and settled when tracked.
_PARTS = (tuple, frozenset, types.CellType, property, staticmethod, classmethod,
          types.MemberDescriptorType, types.GetSetDescriptorType, types.MethodDescriptorType,
          types.WrapperDescriptorType, types.ClassMethodDescriptorType)
# Containers a definition binds: settled, and only definitions inside them are followed.
_CONTAINERS = (dict, list, set)
# Instances that belong to a class's definition, by their type's module.
_DEFINITION_MODULES = ("dataclasses", "msgspec", "msgspec._core", "abc", "_abc", "enum",
                       "_collections")  # a namedtuple's field getters

_lock = threading.Lock()
_pending: set[str] = set()  # modules imported by the agent, not settled yet
_settled: set[str] = set()
settled_objects = 0  # moves so far (an object two walks found counts twice)
# Set once the agent's start-up imports and its run-time state are settled (the server thread's
# pass, lifecycle.py), or tried where nothing can be: benchmarks wait for it to measure the state
# a service runs in.
start_settled = threading.Event()


class _ImportRecorder:
    """A meta-path finder that finds nothing: it notes the modules a recording thread is about
    to import (the first finder asked, before any import system finds them). An app thread
    importing at the same moment is not noted. Installed once and never removed: importlib
    iterates `sys.meta_path` itself, unlocked, and a removal under an import running in another
    thread would make it skip the next finder (an insertion at most asks one finder twice)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if _recording:
            names = _recording.get(threading.get_ident())
            if names is not None:
                names.add(name)


_recorder = _ImportRecorder()
_recording: dict[int, set[str]] = {}  # thread ident -> the module names it imported


@contextmanager
def note_imports() -> Iterator[set[str]]:
    """Remember the modules this thread imports during the block (the set yielded holds
    their names when the block ends)."""
    ident = threading.get_ident()
    added: set[str] = set()
    with _lock:
        nested = ident in _recording
        if not nested:
            _recording[ident] = added
            if not any(finder is _recorder for finder in sys.meta_path):
                sys.meta_path.insert(0, _recorder)
    try:
        yield added
    finally:
        if not nested:
            with _lock:
                del _recording[ident]
                _pending.update(added - _settled)


def available() -> bool:
    """Whether this interpreter lets the agent's definitions be settled (C extension built,
    a generational collector with the GIL)."""
    return _gc_accel is not None and bool(_gc_accel.AVAILABLE)


def settle_imported(only: Iterable[str] | None = None) -> int:
    """Move the definitions of the modules noted so far (or of `only` among them) out of the
    collector's generations; the agent's own modules are always included.

    Returns how many objects moved; -1 when a collection is in progress (call again later:
    the modules stay pending). Cheap when nothing is pending."""
    global settled_objects
    if not available():
        return 0
    with _lock:
        if only is None:
            wanted = _pending | {name for name in list(sys.modules)
                                 if name == "introspect" or name.startswith("introspect.")}
        else:
            wanted = _pending & set(only)
        names = sorted(wanted - _settled)
    modules = [m for name in names if isinstance(m := sys.modules.get(name), types.ModuleType)
               # an import another thread is still running: settled at a later call
               and not getattr(getattr(m, "__spec__", None), "_initializing", False)]
    moved = 0
    if modules:
        # The walk runs unlocked (~20 ms for a whole start-up): a thread noting imports
        # meanwhile does not wait. Two threads settling one module move it twice: harmless.
        moved = _gc_accel.settle(list(definitions(modules)))
        if moved < 0:
            return -1
        done = {m.__name__ for m in modules}
        with _lock:
            _settled.update(done)
            _pending.difference_update(done)
            settled_objects += moved
    return moved


def definitions(modules: Iterable[types.ModuleType]) -> Iterator[object]:
    """The tracked objects that make up these modules' definitions (see the module doc)."""
    modules = list(modules)
    names = {m.__name__ for m in modules}
    module_dicts = {id(vars(m)) for m in list(sys.modules.values())
                    if isinstance(m, types.ModuleType)}
    seen: set[int] = set()

    def ours(obj: object) -> bool:
        return getattr(obj, "__module__", None) in names

    def kind(obj: object, in_class: bool) -> int:
        """FOLLOW: settle and walk its references; CONTAINER: settle, walk definitions only;
        LEAF: settle only; SKIP."""
        if isinstance(obj, (type, types.FunctionType)):
            return FOLLOW if ours(obj) else SKIP
        if isinstance(obj, _PARTS):
            return FOLLOW
        if isinstance(obj, _CONTAINERS):
            return FOLLOW if in_class else CONTAINER
        if isinstance(obj, types.BuiltinFunctionType):
            owner = obj.__self__
            if in_class and isinstance(owner, type):
                return LEAF  # `_tuple_new = tuple.__new__` in a namedtuple
            return LEAF if isinstance(owner, types.ModuleType) and owner.__name__ in names \
                else SKIP
        if in_class and isinstance(obj, types.MappingProxyType):
            return FOLLOW  # a dataclass field's metadata
        if isinstance(obj, types.MethodType) and not in_class:
            return LEAF  # a module's own alias, `seed = _inst.seed`: not the instance itself
        if in_class and (type(obj).__module__ in _DEFINITION_MODULES
                         or (isinstance(obj, enum.Enum) and ours(type(obj)))):
            return FOLLOW
        return SKIP

    for module in modules:
        namespace = vars(module)
        roots: list[object] = [module, namespace]
        for obj in (namespace.get("__spec__"), namespace.get("__loader__")):
            if obj is not None and not isinstance(obj, type):  # a loader may be a class
                roots.append(obj)
                if hasattr(obj, "__dict__"):
                    roots.append(obj.__dict__)
                    # the spec's own lists (`_uninitialized_submodules`, search locations)
                    roots.extend(value for value in list(obj.__dict__.values())
                                 if isinstance(value, _CONTAINERS))
        for obj in roots:
            if id(obj) not in seen:
                seen.add(id(obj))
                yield obj
        stack = [(value, False) for value in list(namespace.values())]
        while stack:
            obj, in_class = stack.pop()
            key = id(obj)
            if key in seen or key in module_dicts:
                continue
            how = _KIND_BY_TYPE.get(type(obj))  # the common kinds at the cost of one lookup
            if how is None:
                how = kind(obj, in_class)
            elif how == CONTAINER and in_class:
                how = FOLLOW
            if how == SKIP:
                continue
            seen.add(key)
            if gc.is_tracked(obj):
                yield obj
            if how == LEAF:
                continue
            if how == CONTAINER:
                # What a module-level container holds may be the app's: definitions only.
                stack.extend((item, False) for item in _items(obj)
                             if isinstance(item, (type, types.FunctionType, tuple, frozenset)))
                continue
            inside = in_class or isinstance(obj, (type, types.FunctionType))
            if isinstance(obj, type):
                # The weak references to a class: its entry in each base's subclass registry
                # and in ABC caches. They die with it, and never before.
                for ref in weakref.getweakrefs(obj):
                    if id(ref) not in seen and gc.is_tracked(ref):
                        seen.add(id(ref))
                        yield ref
                # A static type's namespace is reached only through a mapping proxy, made
                # anew each time (so never kept in `seen`: its id is soon another's).
                stack.extend((ns, True) for ns in gc.get_referents(vars(obj)))
            stack.extend((ref, inside) for ref in gc.get_referents(obj))


FOLLOW, CONTAINER, LEAF, SKIP = range(4)
_KIND_BY_TYPE: dict[type, int] = {
    **dict.fromkeys((str, bytes, int, float, bool, type(None), types.CodeType), SKIP),
    **dict.fromkeys(_PARTS, FOLLOW),
    **dict.fromkeys(_CONTAINERS, CONTAINER),
}


def _items(container: object) -> list[object]:
    try:
        if isinstance(container, dict):
            return list(container.values())
        return list(container)  # type: ignore[call-overload]
    except RuntimeError:  # changed size while we looked (another thread): skip it
        return []


# --- the agent's run-time state ---------------------------------------------------------------
# Followed (settled, and what they refer to looked at): the agent's own instances, the
# containers, cells, closures and weak references they hold, and these library types.
# Exact types: a subclass (of dict, list...) may be the app's.
_RUNTIME_FOLLOWED = frozenset((
    dict, list, set, frozenset, tuple, collections.deque, collections.defaultdict,
    collections.OrderedDict, types.CellType, weakref.ref, weakref.KeyedRef,
    weakref.WeakKeyDictionary, weakref.WeakValueDictionary, weakref.WeakSet, threading.Event,
    threading.Condition))
# Settled, not followed: nothing they refer to is the agent's to settle.
_RUNTIME_LEAVES = (socket.socket, re.Pattern)
_RUNTIME_SKIPPED = frozenset((str, bytes, int, float, bool, type(None), type, types.ModuleType,
                              types.CodeType))
_CLOSURE_MODULES = ("threading", "weakref", "_weakrefset")
_runtime_lock = threading.Lock()
_release_pending = False


def _ours(cls: type) -> bool:
    module = cls.__module__
    return module == "introspect" or module.startswith("introspect.")


def runtime_objects(agent: object) -> Iterator[object]:
    """The tracked objects of the agent's run-time state (see the module doc): what its
    instance refers to, the state its modules keep, the path-importer cache entries of its
    own directories; never a class, function definition, module, frame, or an object of a
    type not listed above (the app's, asyncio's: its loops, tasks, futures, handles)."""
    module_dicts = {id(vars(m)) for m in list(sys.modules.values())
                    if isinstance(m, types.ModuleType)}
    roots: list[object] = [agent]
    for name, module in list(sys.modules.items()):
        if (name == "introspect" or name.startswith("introspect.")) \
                and isinstance(module, types.ModuleType):
            roots.extend(value for value in list(vars(module).values())
                         if not isinstance(value, (type, types.ModuleType, types.FunctionType)))
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    finders = {id(finder) for path, finder in list(sys.path_importer_cache.items())
               if isinstance(path, str) and (path == package or path.startswith(package + os.sep))
               and type(finder).__name__ == "FileFinder"}
    roots.extend(finder for finder in list(sys.path_importer_cache.values())
                 if id(finder) in finders)
    # What the app handed the agent is the app's: never settled, never looked into.
    seen: set[int] = {id(getattr(getattr(agent, "config", None), "console_locals", None))}
    stack = roots
    while stack:
        obj = stack.pop()
        cls = type(obj)
        if cls in _RUNTIME_SKIPPED:  # most of what is reached: the cost of one lookup
            continue
        key = id(obj)
        if key in seen or key in module_dicts:
            continue
        seen.add(key)
        if isinstance(obj, (type, types.ModuleType, types.CodeType)):
            continue
        if isinstance(obj, types.FunctionType):
            # A closure made at run time by the agent, or for one of its threads or weak
            # containers (their `remove` callbacks); a definition is settled for good already.
            module = obj.__module__ or ""
            if "<locals>" not in obj.__qualname__ or not (
                    module.startswith("introspect") or module in _CLOSURE_MODULES):
                continue
        elif isinstance(obj, (types.MethodType, types.BuiltinMethodType)):
            # A method bound to one of the agent's objects (its function is a definition);
            # one bound to an app's object (a callable handed to the agent) is the app's.
            owner = getattr(obj, "__self__", None)
            if type(owner) in _RUNTIME_FOLLOWED or _ours(type(owner)):
                if gc.is_tracked(obj):
                    yield obj
                stack.append(owner)
            continue
        elif isinstance(obj, _RUNTIME_LEAVES):
            if gc.is_tracked(obj):
                yield obj
            continue
        elif not (_ours(cls) or cls in _RUNTIME_FOLLOWED
                  or key in finders
                  or (isinstance(obj, threading.Thread) and obj.name.startswith("introspect"))):
            continue
        if gc.is_tracked(obj):
            yield obj
        try:
            stack.extend(gc.get_referents(obj))
        except RuntimeError:  # pragma: no cover - changed size while we looked: skip it
            pass


def settle_runtime(agent: Any) -> int:
    """Move the agent's run-time state (`runtime_objects`) out of the collector's generations
    into the run-time list, after moving what that list held back into the oldest generation
    (what was replaced since the last call is examined by the collector again). Returns how
    many objects are settled; -1 when a collection is in progress (call again later); 0 once
    the agent is stopped (`agent.running` false) or where nothing can be settled."""
    if not available():
        return 0
    objects = list(runtime_objects(agent))
    with _runtime_lock:
        if not agent.running:
            return 0
        if _gc_accel.release() < 0:
            return -1
        return _gc_accel.settle_runtime(objects)


def release_runtime(timeout: float = 1.0) -> int:
    """Move the run-time list back into the oldest generation (`stop()`): the agent's objects
    are the collector's again, collectable once dropped. A collection in progress on another
    thread is waited out (up to `timeout`); one this thread is inside of (a finalizer calling
    stop()) leaves the release to a daemon thread. Returns how many objects moved, or -1."""
    global _release_pending
    if not available():
        return 0
    deadline = time.monotonic() + timeout
    with _runtime_lock:
        while True:
            moved = _gc_accel.release()
            if moved >= 0:
                _release_pending = False
                return moved
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        if not _release_pending:
            _release_pending = True
            threading.Thread(target=_release_later, name="introspect-release",
                             daemon=True).start()
    return -1


def _after_fork_in_child() -> None:
    """A lock another thread held at the fork stays held in the child: new ones. The child's
    agent (if running) settles its run-time state again from its new server thread."""
    global _lock, _runtime_lock, _release_pending
    _lock = threading.Lock()
    _runtime_lock = threading.Lock()
    pending, _release_pending = _release_pending, False
    if pending:  # its thread was the parent's
        release_runtime(timeout=0.0)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _release_later() -> None:
    while _release_pending:
        if release_runtime(timeout=0.0) >= 0:
            return
        time.sleep(0.05)
