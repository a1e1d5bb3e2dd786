"""The agent's definitions, moved out of the collector's way once imported (issue 17).

A full collection walks every object the collector tracks. A started agent brings ~6,000 of
its own (its modules and what they import: msgspec, decimal, uuid... in a host that had not
loaded them), and every full collection of the app walked them: under task churn that was
40 % more time paused in generation 2 in a bare asyncio host. Most of them are definitions —
modules, their namespaces, classes, functions, descriptors, constant tuples — that live as long
as the process and can never be garbage. `settle_imported()` finds those of the modules the
agent imported and hands them to `_gc_accel.settle`, which moves them out of the generation
lists (they stay tracked; see the C file for why that is safe).

What is picked, from each module the agent imported (`note_imports`), and nothing else:
- the module, its namespace, its spec and loader;
- the functions and classes it defines (`__module__` is one of those modules), their
  namespaces, bases and MRO, defaults, closures, descriptors, properties and constant tuples;
  the definitional objects a class carries (dataclass fields, msgspec struct info, enum
  members);
- containers the module or a class binds (the container, not what it holds), and the module's
  own bound-method aliases (`seed = _inst.seed`, not `_inst`);
- the weak references to those classes (their entries in their bases' subclass registries and
  in ABC caches), which die with the class.
Never an instance the agent creates at run time (its state changes; a replaced one could be
garbage), never the app's objects. The module set is what the agent's own imports brought in:
those of the thread running start() while it runs, and those of `late_import` (a meta-path
finder notes them, `note_imports`); a module the app imports from another thread at the same
moment is not among them.

The effect for the app: full collections walk its own heap, as without the agent; the agent's
definitions no longer appear in `gc.get_objects()`. With no C compiler, nothing moves.
"""

from __future__ import annotations

import enum
import gc
import sys
import threading
import types
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

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
_DEFINITION_MODULES = ("dataclasses", "msgspec", "msgspec._core", "abc", "_abc", "enum")

_lock = threading.Lock()
_pending: set[str] = set()  # modules imported by the agent, not settled yet
_settled: set[str] = set()
settled_objects = 0  # moves so far (an object two walks found counts twice)
# Set once the agent's start-up imports are settled (the server thread's pass, lifecycle.py),
# or at once where nothing can be: benchmarks wait for it to measure the state a service runs in.
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
        start_settled.set()
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
    if only is None:
        start_settled.set()
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
            return LEAF if isinstance(owner, types.ModuleType) and owner.__name__ in names \
                else SKIP
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
