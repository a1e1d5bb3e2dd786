"""asyncio tasks: live counts by kind kept incrementally, plus on-demand census and detail.

Counting happens in a task factory installed on the observed loop (chained to the app's own
factory, which stays in force and is what `loop.get_task_factory()` keeps returning). Each
task gets one `TaskMeta` — a weak reference to the task that carries its seq, kind, creation
time and parent — kept in the collector's registry (seq -> TaskMeta) until the task is done,
and one done-callback (a bound method, not a closure per task). Nothing is set on the task:
an attribute would give every task a `__dict__` (measured ~10 % of workload B, and more work
for the GC). `meta_of(task)` finds the TaskMeta among the task's weak references; it is the
one way to read it. The C accelerator (`_tasks_accel`) carries the factory and the done
callback when built; the pure-Python path below has the same semantics. Per-task work —
location, await chain — is done only on demand.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from introspect.agent.asyncio_facts import loop_tasks
from introspect.agent.collectors import frames as fr

OUTCOMES = ("ok", "error", "cancelled")
# C path: a new task is held (strongly) in a "young" ring instead of getting a done callback;
# each new task first looks at the oldest few young ones (_tasks_accel.c `step`) and
# `flush()` looks at all of them at each loop probe beat. A task done by then is accounted
# and released with no done-callback Handle (most, under churn: a task per request is
# released within a few requests, not kept alive to feed the collector); one still pending
# when old next to the others, after YOUNG_LIMIT newer tasks or at two beats gets the
# callback. Bounds: ≤ YOUNG_LIMIT tasks held, and a finished task is seen finished within one
# probe interval while the loop runs.
YOUNG_LIMIT = 1024
_current_task = asyncio.current_task
# 3.11's current_task is Python code; the C factory reads the dict it reads (3.12+: C, and
# 3.14 no longer fills that dict).
_CURRENT_TASKS = getattr(asyncio.tasks, "_current_tasks", None) \
    if sys.version_info < (3, 12) else None
_running_loop = asyncio._get_running_loop
_getframe = sys._getframe
_monotonic = time.monotonic


class PyTaskMeta(weakref.ref):
    """A weak reference to a task with its metadata (the pure-Python form of TaskMeta)."""
    __slots__ = ("created", "kind", "parent", "seq", "where")
    seq: int
    kind: str
    created: float  # time.monotonic()
    parent: int | None
    where: tuple[types.CodeType, int] | None  # the user frame that called create_task


try:
    from introspect.agent import _tasks_accel as _accel
except ImportError:  # no C compiler at install time: the pure-Python path
    _accel = None

TaskMeta: type = _accel.TaskMeta if _accel is not None else PyTaskMeta
_getweakrefs = weakref.getweakrefs


def new_meta(task: Any, seq: int, kind: str, created: float, parent: int | None) -> Any:
    """A TaskMeta for `task`; it lives as long as the caller keeps it (the registry does)."""
    meta = TaskMeta(task)
    meta.seq, meta.kind, meta.created, meta.parent = seq, kind, created, parent
    meta.where = None
    return meta


def is_library(filename: str) -> bool:
    """A frame "created at" looks past: asyncio, the rest of the stdlib, the agent."""
    return fr.is_stdlib(filename) or fr.is_agent(filename)


_LIBRARY_FILES: dict[str, bool] = {}


def creation_site(frame: types.FrameType | None) -> tuple[types.CodeType, int] | None:
    """(code, line) of the first frame from `frame` outwards outside the stdlib and agent."""
    for _ in range(12):
        if frame is None:
            return None
        code = frame.f_code
        verdict = _LIBRARY_FILES.get(code.co_filename)
        if verdict is None:
            verdict = is_library(code.co_filename)
            if len(_LIBRARY_FILES) < 4096:
                _LIBRARY_FILES[code.co_filename] = verdict
        if not verdict:
            return code, frame.f_lineno
        frame = frame.f_back
    return None


def created_at(meta: Any) -> str:
    """`file:line` of the user code that created the task, "" when unknown."""
    where = getattr(meta, "where", None)
    return f"{where[0].co_filename}:{where[1]}" if where else ""


def _py_meta_of(task: Any) -> Any:
    try:
        for ref in _getweakrefs(task):
            if type(ref) is PyTaskMeta:
                return ref
    except TypeError:
        pass
    return None


# The task's TaskMeta (.seq, .kind, .created, .parent), or None: the one accessor.
meta_of: Callable[[Any], Any] = _accel.meta_of if _accel is not None else _py_meta_of


class TaskCollector:
    def __init__(self, on_crash: Callable[[asyncio.Task, TaskMeta, BaseException], None],
                 on_error: Callable[[str, BaseException], None], created_at: bool = True) -> None:
        self._seq = itertools.count(1)
        self._kinds: dict[Any, str] = {}
        # The pure-Python path's counts; the C path keeps them in C (`counts()` reads either).
        self.live: dict[str, int] = {}
        self.created: dict[str, int] = {}
        self.finished: dict[tuple[str, str], int] = {}
        self._on_crash = on_crash
        self._on_error = on_error
        self.created_at = created_at  # record each task's creation site (a frame walk)
        # Live tasks in creation order (seq → TaskMeta, a weak reference): the oldest N and
        # pages by age are O(N shown), not O(all tasks); copying it is one C call, safe from
        # any thread.
        self.registry: dict[int, weakref.ref] = {}
        self._on_done_callback: Callable[[asyncio.Task], None] = self._on_done  # bound once
        if _accel is not None:
            self._on_done_callback = _accel.DoneCallback(
                registry=self.registry, on_crash=on_crash, on_error=on_error,
                young_limit=YOUNG_LIMIT, task_class=asyncio.Task)

    # --- hot path (loop thread) ------------------------------------------------------------
    def kind_of(self, coro: Any) -> str:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        key = code if code is not None else type(coro)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._compute_kind(coro, code)
            self._kinds[key] = kind
        return kind

    @staticmethod
    def _compute_kind(coro: Any, code: types.CodeType | None) -> str:
        if code is None:
            cls = type(coro)
            return f"{cls.__module__}.{cls.__qualname__}"
        frame = fr.coroutine_frame(coro)
        module = frame.f_globals.get("__name__", "?") if frame is not None else "?"
        return f"{module}.{code.co_qualname}"

    def register(self, task: asyncio.Task, coro: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Account a task that exists already (adoption; the factory does the same inline)."""
        try:
            try:
                kind = self._kinds[coro.cr_code]
            except (AttributeError, KeyError):
                kind = self.kind_of(coro)
            parent = _current_task(loop)
            parent_meta = meta_of(parent) if parent is not None else None
            parent_seq = parent_meta.seq if parent_meta is not None else None
            if _accel is not None:
                self._on_done_callback.track(task, kind, parent_seq)  # type: ignore[attr-defined]
                return
            seq = next(self._seq)
            self.registry[seq] = new_meta(task, seq, kind, _monotonic(), parent_seq)
            live = self.live
            live[kind] = live.get(kind, 0) + 1
            created = self.created
            created[kind] = created.get(kind, 0) + 1
            task.add_done_callback(self._on_done_callback)
        except Exception as exc:  # never break task creation
            self._on_error("tasks", exc)

    def _on_done(self, task: asyncio.Task) -> None:
        try:
            meta = meta_of(task)
            if meta is None:
                return
            kind = meta.kind
            if self.registry.pop(meta.seq, None) is None:
                return  # accounted already
            exc = None
            if task.cancelled():
                outcome = "cancelled"
            else:
                # Read the field, not task.exception(): that would mark it retrieved and
                # silence asyncio's own "exception was never retrieved" report.
                exc = getattr(task, "_exception", None)
                outcome = "ok" if exc is None else "error"
            self.live[kind] = self.live.get(kind, 1) - 1
            key = (kind, outcome)
            self.finished[key] = self.finished.get(key, 0) + 1
            if exc is not None:
                self._on_crash(task, meta, exc)
        except Exception as exc:
            self._on_error("tasks", exc)

    def make_factory(self, previous: Callable[..., Any] | None) -> Callable[..., Any]:
        """The task factory (its `.previous` is the app's own factory): the C one when built,
        else `register` inlined in Python with every name bound to a local (workload B, task
        churn, is the worst case: measured in BENCHMARKS.md)."""
        if _accel is not None:
            return _accel.TaskFactory(
                kinds=self._kinds, kind_of=self.kind_of, done=self._on_done_callback,
                on_error=self._on_error, current_task=_current_task, previous=previous,
                task_class=asyncio.Task, is_library=is_library if self.created_at else None,
                current_tasks=_CURRENT_TASKS)
        return self._python_factory(previous)

    def _python_factory(self, previous: Callable[..., Any] | None) -> Callable[..., Any]:
        kinds = self._kinds
        kind_of = self.kind_of
        live = self.live
        created = self.created
        registry = self.registry
        counter = self._seq
        on_done = self._on_done_callback
        on_error = self._on_error
        task_class = asyncio.Task
        meta_type = TaskMeta
        created_at = self.created_at

        def introspect_task_factory(loop, coro, **kwargs):
            # Kind and parent before the task exists: an eager task (3.12+) runs its first
            # step inside its creation, and may even finish there (no frame left to name it).
            try:
                try:
                    kind = kinds[coro.cr_code]
                except (AttributeError, KeyError):
                    kind = kind_of(coro)
                parent = _current_task(loop)
                site = creation_site(_getframe(1)) if created_at else None
            except Exception as exc:  # never break task creation
                on_error("tasks", exc)
                kind = parent = None
            if previous is not None:
                task = previous(loop, coro, **kwargs)
            else:
                task = task_class(coro, loop=loop, **kwargs)
            if kind is None:
                return task
            try:
                parent_meta = meta_of(parent) if parent is not None else None
                seq = next(counter)
                meta = meta_type(task)
                meta.seq = seq
                meta.kind = kind
                meta.created = _monotonic()
                meta.parent = parent_meta.seq if parent_meta is not None else None
                meta.where = site
                registry[seq] = meta
                live[kind] = live.get(kind, 0) + 1
                created[kind] = created.get(kind, 0) + 1
                task.add_done_callback(on_done)
            except Exception as exc:  # never break task creation
                on_error("tasks", exc)
            return task

        introspect_task_factory.previous = previous  # type: ignore[attr-defined]
        return introspect_task_factory

    def flush(self) -> None:
        """Account the young tasks that are done (on the loop thread: at each probe beat);
        those pending at the previous flush get the done callback."""
        if _accel is not None and self._on_done_callback.young:  # type: ignore[attr-defined]
            try:
                self._on_done_callback.sweep()  # type: ignore[attr-defined]
            except Exception as exc:
                self._on_error("tasks", exc)

    def adopt(self, loop: asyncio.AbstractEventLoop,
              tasks: list[asyncio.Task] | None = None) -> int:
        """Account tasks that existed before the agent attached (call on the loop thread):
        `tasks`, or all of the loop's."""
        adopted = 0
        for task in asyncio.all_tasks(loop) if tasks is None else tasks:
            if meta_of(task) is None and not task.done():
                self.register(task, task.get_coro(), loop)
                adopted += 1
        return adopted

    # --- reads (any thread) ----------------------------------------------------------------
    def counts(self) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str], int]]:
        """(live by kind, created by kind, finished by (kind, outcome)): new dicts, each a
        consistent reading from any thread (one C call, or dict copies under the GIL)."""
        if _running_loop() is not None:  # on a loop's thread: exact up to now (young swept)
            self.flush()
        if _accel is not None:
            return self._on_done_callback.counts()  # type: ignore[attr-defined]
        return dict(self.live), dict(self.created), dict(self.finished)


def _alive(refs: list[weakref.ref]) -> list[asyncio.Task]:
    out = []
    for ref in refs:
        task = ref()
        if task is not None and not task.done():
            out.append(task)
    return out


_REGISTRIES: weakref.WeakKeyDictionary[Any, dict[int, weakref.ref]] = \
    weakref.WeakKeyDictionary()


def bind_registry(loop: asyncio.AbstractEventLoop, registry: dict[int, weakref.ref]) -> None:
    _REGISTRIES[loop] = registry


def unbind_registry(loop: asyncio.AbstractEventLoop) -> None:
    _REGISTRIES.pop(loop, None)


def registry_of(loop: asyncio.AbstractEventLoop) -> dict[int, weakref.ref] | None:
    try:
        return _REGISTRIES.get(loop)
    except TypeError:
        return None


def oldest_tasks(loop: asyncio.AbstractEventLoop, count: int, skip: int = 0,
                 newest_first: bool = False) -> list[asyncio.Task]:
    """Live tasks in creation order (or reversed), `skip` then `count` of them: O(shown)."""
    registry = registry_of(loop)
    if registry is None:
        tasks = sorted(live_tasks(loop), key=lambda t: getattr(meta_of(t), "seq", 0),
                       reverse=newest_first)
        return tasks[skip: skip + count]
    out: list[asyncio.Task] = []
    chunk = max(64, (skip + count) * 2)
    taken = 0
    while True:
        source = reversed(registry.values()) if newest_first else iter(registry.values())
        try:
            refs = list(islice(source, taken, taken + chunk))  # one C call: atomic
        except RuntimeError:  # changed size mid-copy: start over
            out, taken = [], 0
            continue
        alive = _alive(refs)
        out.extend(alive)
        taken += len(refs)
        if len(out) >= skip + count or len(refs) < chunk:
            return out[skip: skip + count]


def tasks_in_age_order(loop: asyncio.AbstractEventLoop,
                       newest_first: bool = False) -> Iterator[asyncio.Task]:
    """Live tasks, oldest (or newest) first, lazily: the registry's weak references are
    copied at once (one C call), each is resolved only when the caller gets to it."""
    registry = registry_of(loop)
    if registry is None:
        yield from oldest_tasks(loop, 1 << 62, newest_first=newest_first)
        return
    for _ in range(100):
        try:
            refs = list(registry.values())
        except RuntimeError:  # changed size mid-copy (another thread): again
            continue
        break
    else:
        return
    if newest_first:
        refs.reverse()
    for ref in refs:
        task = ref()
        if task is not None and not task.done():
            yield task


def live_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task]:
    """All not-done tasks of `loop`. Tolerates being called from another thread.

    From the agent's registry when the loop is instrumented (fast); else `asyncio.all_tasks`
    (public on every version, eager tasks included)."""
    registry = registry_of(loop)
    if registry is not None:
        return _alive(list(registry.values()))
    out = []
    for task in loop_tasks(loop):
        try:
            if not task.done():
                out.append(task)
        except Exception:
            continue
    return out


def task_state(task: asyncio.Task, running: asyncio.Task | None) -> str:
    if task is running:
        return "running"
    if task.cancelling():
        return "cancelling"
    if getattr(task, "_fut_waiter", None) is None:
        return "ready"
    return "waiting"


def where(task: asyncio.Task) -> tuple[str, str]:
    """(location, awaiting): the innermost user frame, and what the chain waits on."""
    chain = fr.coroutine_chain(task.get_coro())
    user_loc = ""
    for link in chain:
        frame = fr.coroutine_frame(link)
        if frame is None:
            continue
        filename = frame.f_code.co_filename
        if not fr.is_stdlib(filename):
            user_loc = fr.frame_location(frame)
    waiter = getattr(task, "_fut_waiter", None)
    awaiting = ""
    if waiter is not None:
        # Read each frame once: from the agent thread it can vanish between two reads.
        framed = [(link, f) for link in chain if (f := fr.coroutine_frame(link)) is not None]
        if framed and fr.is_stdlib(framed[-1][1].f_code.co_filename):
            awaiting = _stdlib_awaiting(framed[-1][0])
        if not awaiting:
            awaiting = fr.describe_awaitable(waiter)
    if not user_loc and chain:
        frame = fr.coroutine_frame(chain[0])
        if frame is not None:
            user_loc = fr.frame_location(frame)
    return user_loc, awaiting


def _stdlib_awaiting(coro: Any) -> str:
    """`Queue.get`, `Lock.acquire`, `sleep`... with the object's registered name if known."""
    name = fr.qualname_of(coro)
    frame = fr.coroutine_frame(coro)
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return f"asyncio.{name}" if module.startswith("asyncio") else name


def await_chain(task: asyncio.Task) -> list[tuple[str, str, str]]:
    """(what, location, detail) from the task's coroutine down to the awaited object."""
    out = []
    for link in fr.coroutine_chain(task.get_coro()):
        frame = fr.coroutine_frame(link)
        if frame is not None:
            out.append((fr.qualname_of(link), fr.frame_location(frame), ""))
        else:
            out.append((fr.describe_awaitable(link), "", ""))
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None:
        out.append((fr.describe_awaitable(waiter), "", _future_detail(waiter)))
    return out


def _future_detail(fut: Any) -> str:
    callbacks = getattr(fut, "_callbacks", None) or []
    return f"{len(callbacks)} callback(s)"
