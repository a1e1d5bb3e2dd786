"""Who uses a queue: the task kinds that consume and produce each `asyncio.Queue`, and the name
the code binds it to.

Owners are observed two ways, both cheap:
- in short sampling windows (`QueueCallSampler`: up to 256 calls or 0.25 s, once a second
  while they find new owners, backing off to once every 5 minutes after ten that found none; on
  CPython 3.13+ at most `MAX_WINDOWS` per process, see there), the running task's kind is noted
  at each `get_nowait` / `put_nowait` (which `Queue.get` / `Queue.put` end in) — a busy
  consumer that never waits is still seen as it takes items. Outside the windows asyncio's
  methods run unwrapped, at no cost;
- every few seconds the periodic duties (blocking.py) map the futures in each queue's
  `_getters` / `_putters` back to the tasks awaiting them (`Task._fut_waiter`), so a
  consumer that only waits is seen too.
Kinds per queue are bounded (`MAX_KINDS`).

Names are found on demand (a client's snapshot or queue list), once per queue: one
`gc.get_referrers` pass over all unnamed queues (a module global `mod.inbox`, an attribute
`Gateway.inbox`, or a coroutine's local `main.inbox`), at most every `NAME_PERIOD` seconds, and
only while the heap is small (`NAME_MAX_BLOCKS`): the walk holds the GIL, so the loop waits.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from introspect.agent.collectors import frames as fr
from introspect.agent.collectors import tasks as task_mod

if TYPE_CHECKING:
    from introspect.agent.core import Agent

_current_task = asyncio.current_task
_monotonic = time.monotonic
MAX_KINDS = 8  # consumer (and producer) kinds kept per queue
# get_nowait/put_nowait are sampled in windows (QueueCallSampler): one every WINDOW_PERIOD (on
# average: each gap is jittered by ±50 %),
# open until WINDOW_CALLS calls were sampled or WINDOW_SECONDS passed. After WINDOW_PATIENCE
# windows in a row that noted no new owner, the gap doubles with each further one, up to
# WINDOW_PERIOD_MAX; a window that notes one brings it back to WINDOW_PERIOD.
WINDOW_PERIOD = 1.0
WINDOW_PATIENCE = 10
WINDOW_PERIOD_MAX = 300.0
WINDOW_CALLS = 256
WINDOW_SECONDS = 0.25
# CPython 3.13+ gives a class at most 1000 type versions (MAX_VERSIONS_PER_CLASS in
# Objects/typeobject.c): once they are spent, code using the class is never specialised again.
# A window spends about two of asyncio.Queue's (the swap in, the swap out) and of each
# subclass's; measured, 600 swaps left `queue.get_nowait()` unspecialised for good on 3.13.5
# and 3.14.10 (3.11 and 3.12.1 have no such cap). There the windows stop after MAX_WINDOWS,
# two fifths of the budget; consumers that wait are still seen by `sample_waiters`.
MAX_WINDOWS: int | None = 200 if sys.version_info >= (3, 13) else None
SAMPLE_PERIOD = 2.0  # seconds between scans of waiting getters/putters
SAMPLE_MAX_TASKS = 10_000  # above this many live tasks, waiters are not scanned
NAME_PERIOD = 30.0  # seconds between naming passes (each walks the heap once or twice)
# The walk holds the GIL (the loop waits) ~30 ns per allocated block: above this many blocks
# (~10 ms) no pass is made and queues keep their creation site as their only name.
NAME_MAX_BLOCKS = 300_000


class QueueOwners:
    """Per queue (by id, dropped with the queue): consumer kinds, producer kinds, bound name."""

    def __init__(self) -> None:
        self._roles: dict[int, tuple[dict[str, None], dict[str, None]]] = {}
        self._refs: dict[int, weakref.ref] = {}
        self._names: dict[int, str | None] = {}  # None: looked for, nothing readable found
        self._lock = threading.Lock()
        self._next_sample = 0.0
        self._next_naming = 0.0

    # --- recording ---------------------------------------------------------------------------
    def note(self, queue: Any, kind: str, consumer: bool) -> None:
        key = id(queue)
        with self._lock:
            roles = self._roles.get(key)
            if roles is None:
                roles = self._track(queue, key)
                if roles is None:
                    return
            kinds = roles[0 if consumer else 1]
            if kind not in kinds and len(kinds) < MAX_KINDS:
                kinds[kind] = None

    def _track(self, queue: Any, key: int) -> tuple[dict[str, None], dict[str, None]] | None:
        def _gone(_ref: weakref.ref, key: int = key) -> None:
            with self._lock:
                if self._refs.get(key) is _ref:
                    self._refs.pop(key, None)
                    self._roles.pop(key, None)
                    self._names.pop(key, None)

        try:
            self._refs[key] = weakref.ref(queue, _gone)
        except TypeError:
            return None
        roles: tuple[dict[str, None], dict[str, None]] = ({}, {})
        self._roles[key] = roles
        return roles

    def knows(self, queue: Any, kind: str, consumer: bool) -> bool:
        roles = self._roles.get(id(queue))
        return roles is not None and kind in roles[0 if consumer else 1]

    def sample_waiters(self, agent: Agent, now: float) -> None:
        """The periodic duties (blocking.py): the kinds of tasks waiting in each queue's get/put."""
        if now < self._next_sample or agent.loop is None:
            return
        self._next_sample = now + SAMPLE_PERIOD
        waiting: list[tuple[Any, Any, bool]] = []
        for obj, *_rest in agent.queues.items():
            if isinstance(obj, asyncio.Queue):
                waiting += [(obj, f, True) for f in list(getattr(obj, "_getters", ()))]
                waiting += [(obj, f, False) for f in list(getattr(obj, "_putters", ()))]
        if not waiting or sum(max(0, n) for n in agent.tasks.counts()[0].values()) > \
                SAMPLE_MAX_TASKS:
            return
        kind_of: dict[int, str] = {}
        for task in task_mod.live_tasks(agent.loop):
            waiter = getattr(task, "_fut_waiter", None)
            meta = task_mod.meta_of(task)
            if waiter is not None and meta is not None:
                kind_of[id(waiter)] = meta.kind
        for queue, future, consumer in waiting:
            kind = kind_of.get(id(future))
            if kind is not None:
                self.note(queue, kind, consumer)

    # --- reads -------------------------------------------------------------------------------
    def owners(self, queue: Any, first_seen: bool = False) -> tuple[list[str], list[str]]:
        """(consumer kinds, producer kinds) seen so far, sorted (or in the order seen)."""
        with self._lock:
            roles = self._roles.get(id(queue))
            if roles is None or self._refs[id(queue)]() is not queue:
                return [], []
            if first_seen:
                return list(roles[0]), list(roles[1])
            return sorted(roles[0]), sorted(roles[1])

    def names(self, queues: list[Any]) -> dict[int, str]:
        """id(queue) -> the name the code binds it to, for those that have one. Unnamed queues
        are looked for together, at most every NAME_PERIOD seconds."""
        unnamed = [q for q in queues if id(q) not in self._names]
        now = time.monotonic()
        if unnamed and now >= self._next_naming:
            self._next_naming = now + NAME_PERIOD
            if sys.getallocatedblocks() > NAME_MAX_BLOCKS:
                return {k: v for k, v in list(self._names.items()) if v is not None}
            found = bound_names(unnamed)
            with self._lock:
                for q in unnamed:
                    if id(q) in self._refs or self._track(q, id(q)) is not None:
                        self._names[id(q)] = found.get(id(q))
        return {k: v for k, v in list(self._names.items()) if v is not None}


def bound_names(objs: list[Any]) -> dict[int, str]:
    """id(obj) -> `module.var`, else `Class.attr`, else `function.local` (user code only)."""
    wanted = {id(o): o for o in objs}
    found: dict[int, tuple[int, str]] = {}  # id -> (rank: lower is more readable, name)

    def offer(obj_id: int, rank: int, name: str) -> None:
        if obj_id in wanted and (obj_id not in found or rank < found[obj_id][0]):
            found[obj_id] = (rank, name)

    instance_dicts: dict[int, tuple[dict, int, str]] = {}  # id(dict) -> (dict, id(obj), key)
    for ref in gc.get_referrers(*objs):
        if isinstance(ref, dict):
            module = ref.get("__name__") if "__builtins__" in ref else None
            for key, value in list(ref.items()):
                if id(value) not in wanted or not isinstance(key, str):
                    continue
                if isinstance(module, str):
                    offer(id(value), 0, f"{module}.{key}")
                else:
                    instance_dicts[id(ref)] = (ref, id(value), key)
        elif isinstance(ref, types.CoroutineType | types.FrameType):
            frame = ref.cr_frame if isinstance(ref, types.CoroutineType) else ref
            if frame is None or fr.is_stdlib(frame.f_code.co_filename) or \
                    fr.is_agent(frame.f_code.co_filename):
                continue  # `self` inside Queue.get, our own loops: not the app's names
            for key, value in list(frame.f_locals.items()):
                offer(id(value), 2, f"{frame.f_code.co_name}.{key}")
        elif not isinstance(ref, list | tuple | set | frozenset | type):
            attrs = getattr(ref, "__dict__", None)  # an instance with inline attributes
            if isinstance(attrs, dict):
                for key, value in list(attrs.items()):
                    offer(id(value), 1, f"{type(ref).__name__}.{key}")
    if instance_dicts:
        for owner in gc.get_referrers(*[d for d, _i, _k in instance_dicts.values()]):
            attrs = getattr(owner, "__dict__", None) if not isinstance(owner, dict) else None
            entry = instance_dicts.get(id(attrs)) if attrs is not None else None
            if entry is not None and entry[0] is attrs:
                offer(entry[1], 1, f"{type(owner).__name__}.{entry[2]}")
    return {obj_id: name for obj_id, (_rank, name) in found.items()}


class QueueCallSampler:
    """Notes the running task's kind at `get_nowait` / `put_nowait` of asyncio.Queue (which
    `Queue.get` / `Queue.put` end in) during short sampling windows: every `WINDOW_PERIOD` the
    periodic duties (blocking.py) put class-level wrappers in place, and they are taken out
    again after `WINDOW_CALLS` sampled calls or `WINDOW_SECONDS`, whichever comes first.
    Between windows the methods are asyncio's own, at no cost: wrapped for good, one extra
    Python call per get/put cost ~7 % of a queue-bound loop (workload A: 43,567 against
    40,637 instructions per message). A busy queue closes its window within milliseconds; a
    consumer taking an item every few hundred ms is still caught within a window or two; one
    that only waits is seen by `QueueOwners.sample_waiters`. An app's own replacement of the
    methods is never overwritten: the window stays shut."""

    METHODS = (("get_nowait", True), ("put_nowait", False))

    def __init__(self, owners_of: Callable[[], QueueOwners | None]) -> None:
        self._owners_of = owners_of
        self._originals: dict[str, Any] = {}
        self._wrappers: dict[str, Any] = {}
        for method, consumer in self.METHODS:
            original = asyncio.Queue.__dict__.get(method)
            if original is None or getattr(original, "_introspect_wrapped", False):
                continue  # another agent's window, or nothing to wrap
            self._originals[method] = original
            self._wrappers[method] = self._wrapper(original, consumer, method)
        self._open = False
        self._closes_at = 0.0
        self._next_open = 0.0  # the first window opens at the first tick
        self._idle_windows = 0  # windows in a row that noted no new owner
        self._learned = False  # the window open (or last open) noted a new owner
        self._left = 0
        self._stopped = False
        self.windows = 0  # windows opened so far (tests, diagnostics)
        self.exhausted = False  # MAX_WINDOWS reached: no more windows in this process

    def tick(self, now: float) -> None:
        """Close a window whose time is up, open the next when due (the periodic duties: the
        loop thread's beat, the watchdog while the loop is blocked)."""
        if self._open and now >= self._closes_at:
            self.close()
        if not self._open and now >= self._next_open and not self._stopped:
            self._open_window(now)

    def period(self) -> float:
        """Mean seconds from this window to the next (see WINDOW_PATIENCE)."""
        beyond = self._idle_windows - WINDOW_PATIENCE
        return WINDOW_PERIOD if beyond < 0 else min(WINDOW_PERIOD * 2.0 ** (beyond + 1),
                                                    WINDOW_PERIOD_MAX)

    def next_due(self) -> float:
        """When `tick` must be called: at the next opening only. A window past its time closes
        at its next sampled call (`_note`) or at that tick."""
        return math.inf if self._stopped else self._next_open

    # No lock: the duties open (on the loop thread, or the watchdog while the loop is
    # blocked), the loop thread (or the watchdog) closes, and a lock held by the watchdog at a
    # fork would stay held in the child. `close` restores every method
    # that is still ours, so an interleaving that leaves a wrapper behind heals at its next
    # call (it finds the window shut and closes again).
    def _open_window(self, now: float) -> None:
        if self._open or self._stopped or not self._wrappers:
            return
        if any(asyncio.Queue.__dict__.get(m) is not f for m, f in self._originals.items()):
            self._stopped = True  # the app (or a tool) replaced them: theirs stay
            return
        if MAX_WINDOWS is not None and self.windows >= MAX_WINDOWS:
            self._stopped = self.exhausted = True  # asyncio.Queue's type versions: see above
            return
        self._idle_windows = 0 if self._learned or not self.windows else self._idle_windows + 1
        self._learned = False
        self._left = WINDOW_CALLS
        self._closes_at = now + WINDOW_SECONDS
        # Jittered: a gap in step with a consumer's own period (1 s against a step every
        # 0.25 s) would open every window at the same moment of its cycle, and miss it each time.
        self._next_open = now + self.period() * (0.5 + random.random())
        self._open = True
        for method, wrapper in self._wrappers.items():
            setattr(asyncio.Queue, method, wrapper)
        self.windows += 1

    def close(self) -> None:
        self._open = False
        for method, original in self._originals.items():
            if asyncio.Queue.__dict__.get(method) is self._wrappers[method]:
                setattr(asyncio.Queue, method, original)

    def stop(self) -> None:
        self._stopped = True
        self.close()

    def _note(self, queue: Any, consumer: bool) -> None:
        self._left -= 1
        if self._left <= 0 or not self._open or _monotonic() >= self._closes_at:
            self.close()
        try:
            task = _current_task()
            meta = task_mod.meta_of(task) if task is not None else None
            owners = self._owners_of() if meta is not None else None
            if owners is not None and not owners.knows(queue, meta.kind, consumer):
                owners.note(queue, meta.kind, consumer)
                self._learned = True
        except Exception:
            pass  # no running loop (a put from a thread), or anything else: not ours

    def _wrapper(self, original: Any, consumer: bool, name: str) -> Any:
        note = self._note
        # Exact signatures (no *args): the call stays on CPython's fast call path.
        if consumer:
            def wrapper(self: Any) -> Any:
                note(self, True)
                return original(self)
        else:
            def wrapper(self: Any, item: Any) -> Any:  # type: ignore[misc]
                note(self, False)
                return original(self, item)

        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper._introspect_wrapped = True  # type: ignore[attr-defined]
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        wrapper.__doc__ = original.__doc__
        return wrapper
