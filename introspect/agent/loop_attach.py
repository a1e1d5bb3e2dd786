"""Finding and instrumenting the app's event loop without changing its behaviour.

- Loops created later: up to 3.13, the current policy's `new_event_loop` is wrapped on the
  policy instance, so `asyncio.run()` and friends hand us the loop before it runs. 3.14
  deprecates the policy functions (each call warns: `introspect.start()` must work under
  `-W error::DeprecationWarning`) and 3.16 removes them, so there the module-level
  `asyncio.new_event_loop` (what `asyncio.run` and `Runner` call when given no loop factory)
  is wrapped instead, and `Runner`'s own loop factory as on every version. For 3.16 that is the
  whole path: nothing here touches a policy once `POLICIES_DEPRECATED` holds.
- Loops made before `start()` (`loop = asyncio.new_event_loop()` in module code, then
  `loop.run_until_complete(...)` or `run_forever()`): learnt of as they start running.
  `BaseEventLoop.run_forever` calls `asyncio.events._set_running_loop(loop)` on its own thread
  before its first iteration (looked up in the module at each run, 3.11 to 3.14), so that
  function is wrapped: two calls per `run_forever`, none per iteration. Also as
  `asyncio._set_running_loop`, which uvloop binds when imported: a uvloop loop is found
  this way only if uvloop was imported after `start()`.
- The counting task factory and a chained exception handler are installed with the loop's own
  setters. `BaseEventLoop`'s four accessors (`get/set_task_factory`,
  `get/set_exception_handler`) are wrapped once at class level so that, for an instrumented
  loop, the app can still set its own and `get_*` keep returning the app's objects.
- Nothing is stored on the loop instance: extra instance attributes de-specialise every
  method lookup on the loop in CPython 3.11 (measured: -6% on workload A). Per-loop state
  lives in a WeakKeyDictionary.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from introspect.agent.collectors import tasks as task_mod
from introspect.agent.collectors.tasks import TaskCollector

_BASE = asyncio.BaseEventLoop
# A version fact, not a feature: 3.14 still has the functions, but calling them warns.
POLICIES_DEPRECATED = sys.version_info >= (3, 14) or \
    not hasattr(asyncio, "get_event_loop_policy")
_ORIGINAL = {name: _BASE.__dict__[name] for name in (
    "get_task_factory", "set_task_factory", "get_exception_handler", "set_exception_handler")}


@dataclass
class _Hooks:
    tasks: TaskCollector
    app_factory: Any
    app_handler: Any


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hooks] = \
    weakref.WeakKeyDictionary()


def _hooks(loop: Any) -> _Hooks | None:
    try:
        return _LOOPS.get(loop)
    except TypeError:
        return None


@functools.wraps(_ORIGINAL["set_task_factory"])
def set_task_factory(self: Any, factory: Any) -> None:
    hooks = _hooks(self)
    if hooks is None:
        return _ORIGINAL["set_task_factory"](self, factory)
    if factory is not None and not callable(factory):
        raise TypeError("task factory must be a callable or None")
    hooks.app_factory = factory
    _ORIGINAL["set_task_factory"](self, hooks.tasks.make_factory(factory))
    return None


@functools.wraps(_ORIGINAL["get_task_factory"])
def get_task_factory(self: Any) -> Any:
    hooks = _hooks(self)
    return _ORIGINAL["get_task_factory"](self) if hooks is None else hooks.app_factory


@functools.wraps(_ORIGINAL["set_exception_handler"])
def set_exception_handler(self: Any, handler: Any) -> None:
    hooks = _hooks(self)
    if hooks is None:
        return _ORIGINAL["set_exception_handler"](self, handler)
    if handler is not None and not callable(handler):
        raise TypeError(f"A callable object or None is expected, got {handler!r}")
    hooks.app_handler = handler
    return None


@functools.wraps(_ORIGINAL["get_exception_handler"])
def get_exception_handler(self: Any) -> Any:
    hooks = _hooks(self)
    return _ORIGINAL["get_exception_handler"](self) if hooks is None else hooks.app_handler


_WRAPPERS = {"get_task_factory": get_task_factory, "set_task_factory": set_task_factory,
             "get_exception_handler": get_exception_handler,
             "set_exception_handler": set_exception_handler}


def _install_class_accessors() -> None:
    for name, wrapper in _WRAPPERS.items():
        if _BASE.__dict__.get(name) is not wrapper:
            setattr(_BASE, name, wrapper)


def _uninstall_class_accessors() -> None:
    for name, original in _ORIGINAL.items():
        if _BASE.__dict__.get(name) is _WRAPPERS[name]:
            setattr(_BASE, name, original)


def instrument_loop(loop: asyncio.AbstractEventLoop, tasks: TaskCollector,
                    on_loop_error: Callable[[dict[str, Any]], None]) -> bool:
    """Install the counting task factory and the chained exception handler on `loop`."""
    if _hooks(loop) is not None:
        return False
    hooks = _Hooks(tasks=tasks, app_factory=loop.get_task_factory(),
                   app_handler=loop.get_exception_handler())

    def introspect_exception_handler(the_loop: Any, context: dict[str, Any]) -> None:
        try:
            on_loop_error(context)
        except Exception:
            pass
        handler = hooks.app_handler
        if handler is not None:
            handler(the_loop, context)
        else:
            the_loop.default_exception_handler(context)

    if isinstance(loop, _BASE):
        _install_class_accessors()
        _LOOPS[loop] = hooks
        _ORIGINAL["set_task_factory"](loop, tasks.make_factory(hooks.app_factory))
        _ORIGINAL["set_exception_handler"](loop, introspect_exception_handler)
    else:  # another loop class (uvloop): counted, but an app's later setter replaces ours
        _LOOPS[loop] = hooks
        loop.set_task_factory(tasks.make_factory(hooks.app_factory))
        loop.set_exception_handler(introspect_exception_handler)
    task_mod.bind_registry(loop, tasks.registry)
    return True


def uninstrument_loop(loop: asyncio.AbstractEventLoop) -> None:
    hooks = _LOOPS.pop(loop, None)
    task_mod.unbind_registry(loop)
    if hooks is None:
        return
    try:
        if isinstance(loop, _BASE):
            _ORIGINAL["set_task_factory"](loop, hooks.app_factory)
            _ORIGINAL["set_exception_handler"](loop, hooks.app_handler)
        else:
            loop.set_task_factory(hooks.app_factory)
            loop.set_exception_handler(hooks.app_handler)
    except Exception:
        pass
    if not any(isinstance(lp, _BASE) for lp in list(_LOOPS.keys())):
        _uninstall_class_accessors()


class LoopWatcher:
    """Calls `on_new_loop(loop)` for each loop the current policy creates from now on — and
    keeps doing so when the app installs another policy later (`uvloop.install()`,
    `asyncio.set_event_loop_policy(...)`): that function is wrapped to hook the new policy.
    Loops made by an `asyncio.Runner`'s own `loop_factory` (`uvloop.run()`, 3.12's
    `asyncio.run(loop_factory=...)`) bypass the policy: `Runner._lazy_init` is wrapped too.
    `on_loop_runs(loop)` is called when an asyncio loop starts running on the main thread,
    on that thread, before its first iteration: how a loop made before `start()` is found."""

    def __init__(self, on_new_loop: Callable[[asyncio.AbstractEventLoop], None],
                 on_loop_runs: Callable[[asyncio.AbstractEventLoop], None] | None = None
                 ) -> None:
        self._on_new_loop = on_new_loop
        self._on_loop_runs = on_loop_runs
        self._original_set_running: Any = None
        self._policies: list[Any] = []
        self._original_set_policy: Any = None
        self._original_lazy_init: Any = None
        self._original_new_loop: Any = None

    def install(self) -> None:
        self._hook_runner()
        self._hook_set_running_loop()
        if POLICIES_DEPRECATED:
            self._hook_new_event_loop()
            return
        self._hook_policy(asyncio.get_event_loop_policy())
        if self._original_set_policy is None:
            original_set = asyncio.set_event_loop_policy
            watcher = self

            @functools.wraps(original_set)
            def set_event_loop_policy(policy: Any) -> None:
                original_set(policy)
                try:
                    watcher._hook_policy(asyncio.get_event_loop_policy())
                except Exception:
                    pass

            self._original_set_policy = original_set
            asyncio.set_event_loop_policy = set_event_loop_policy
            asyncio.events.set_event_loop_policy = set_event_loop_policy

    def _hook_policy(self, policy: Any) -> None:
        if getattr(policy, "_introspect_original_new_loop", None) is not None:
            return
        original = policy.new_event_loop
        on_new_loop = self._on_new_loop

        def new_event_loop() -> asyncio.AbstractEventLoop:
            loop = original()
            if threading.current_thread() is threading.main_thread():
                try:
                    on_new_loop(loop)
                except Exception:
                    pass
            return loop

        policy._introspect_original_new_loop = original
        policy.new_event_loop = new_event_loop
        self._policies.append(policy)

    def _hook_new_event_loop(self) -> None:
        original = asyncio.events.new_event_loop
        if self._original_new_loop is not None or \
                getattr(original, "_introspect_original", None) is not None:
            return
        on_new_loop = self._on_new_loop

        @functools.wraps(original)
        def new_event_loop() -> asyncio.AbstractEventLoop:
            loop = original()
            if threading.current_thread() is threading.main_thread():
                try:
                    on_new_loop(loop)
                except Exception:
                    pass
            return loop

        new_event_loop._introspect_original = original  # type: ignore[attr-defined]
        self._original_new_loop = original
        asyncio.events.new_event_loop = new_event_loop
        if asyncio.new_event_loop is original:
            asyncio.new_event_loop = new_event_loop

    def _hook_set_running_loop(self) -> None:
        on_loop_runs = self._on_loop_runs
        original = asyncio.events._set_running_loop
        if on_loop_runs is None or self._original_set_running is not None or \
                getattr(original, "_introspect_original", None) is not None:
            return

        watcher = self

        @functools.wraps(original)
        def _set_running_loop(loop: Any) -> None:
            original(loop)
            # (inert once uninstalled: a loop class imported meanwhile may have bound it)
            if loop is not None and watcher._original_set_running is original and \
                    threading.current_thread() is threading.main_thread():
                try:
                    on_loop_runs(loop)
                except Exception:
                    pass

        _set_running_loop._introspect_original = original  # type: ignore[attr-defined]
        self._original_set_running = original
        asyncio.events._set_running_loop = _set_running_loop
        if asyncio._set_running_loop is original:  # what other loop classes bind at import
            asyncio._set_running_loop = _set_running_loop

    def _hook_runner(self) -> None:
        runner = getattr(asyncio, "Runner", None)
        original = getattr(runner, "_lazy_init", None)
        if original is None or self._original_lazy_init is not None or \
                getattr(original, "_introspect_original", None) is not None:
            return
        on_new_loop = self._on_new_loop

        @functools.wraps(original)
        def _lazy_init(runner_self: Any) -> None:
            fresh = getattr(runner_self, "_loop", None) is None
            original(runner_self)
            loop = getattr(runner_self, "_loop", None)
            if fresh and loop is not None and getattr(runner_self, "_loop_factory", None) \
                    is not None and threading.current_thread() is threading.main_thread():
                try:
                    on_new_loop(loop)  # a second attach of the same loop is a no-op
                except Exception:
                    pass

        _lazy_init._introspect_original = original  # type: ignore[attr-defined]
        self._original_lazy_init = original
        runner._lazy_init = _lazy_init  # type: ignore[union-attr]

    def uninstall(self) -> None:
        original_running, self._original_set_running = self._original_set_running, None
        for module in (asyncio, asyncio.events) if original_running is not None else ():
            if getattr(module._set_running_loop, "_introspect_original", None) \
                    is original_running:
                module._set_running_loop = original_running
        original_lazy, self._original_lazy_init = self._original_lazy_init, None
        runner = getattr(asyncio, "Runner", None)
        if original_lazy is not None and runner is not None and \
                getattr(runner.__dict__.get("_lazy_init"), "_introspect_original", None) \
                is original_lazy:
            runner._lazy_init = original_lazy
        for policy in self._policies:
            for name in ("new_event_loop", "_introspect_original_new_loop"):
                try:
                    delattr(policy, name)
                except AttributeError:
                    pass
        self._policies.clear()
        original_new, self._original_new_loop = self._original_new_loop, None
        if original_new is not None:
            for module in (asyncio, asyncio.events):
                if getattr(module.new_event_loop, "_introspect_original", None) is original_new:
                    module.new_event_loop = original_new
        original_set, self._original_set_policy = self._original_set_policy, None
        if original_set is not None:
            asyncio.set_event_loop_policy = original_set
            asyncio.events.set_event_loop_policy = original_set
