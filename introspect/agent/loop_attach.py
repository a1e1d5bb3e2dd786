"""Finding and instrumenting the app's event loop without changing its behaviour.

- Loops created later: the current policy's `new_event_loop` is wrapped on the policy instance,
  so `asyncio.run()` and friends hand us the loop before it runs.
- The task factory and exception handler are installed *on the loop instance*, chained to what
  the app set; the app can still call `set_task_factory`/`set_exception_handler` and
  `get_*` keep returning the app's own objects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from introspect.agent.collectors.tasks import TaskCollector

_MARK = "_introspect_attached"


def instrument_loop(loop: asyncio.AbstractEventLoop, tasks: TaskCollector,
                    on_loop_error: Callable[[dict[str, Any]], None]) -> bool:
    """Install the counting task factory and the chained exception handler on `loop`."""
    if getattr(loop, _MARK, False):
        return False
    state: dict[str, Any] = {
        "factory": loop.get_task_factory(),
        "handler": loop.get_exception_handler(),
    }
    set_factory = loop.set_task_factory
    set_handler = loop.set_exception_handler

    def app_set_task_factory(factory: Any) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        state["factory"] = factory
        set_factory(tasks.make_factory(factory))

    def app_get_task_factory() -> Any:
        return state["factory"]

    def introspect_exception_handler(the_loop: Any, context: dict[str, Any]) -> None:
        try:
            on_loop_error(context)
        except Exception:
            pass
        handler = state["handler"]
        if handler is not None:
            handler(the_loop, context)
        else:
            the_loop.default_exception_handler(context)

    def app_set_exception_handler(handler: Any) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        state["handler"] = handler

    def app_get_exception_handler() -> Any:
        return state["handler"]

    set_factory(tasks.make_factory(state["factory"]))
    set_handler(introspect_exception_handler)
    loop.set_task_factory = app_set_task_factory  # type: ignore[method-assign]
    loop.get_task_factory = app_get_task_factory  # type: ignore[method-assign]
    loop.set_exception_handler = app_set_exception_handler  # type: ignore[method-assign]
    loop.get_exception_handler = app_get_exception_handler  # type: ignore[method-assign]
    loop._introspect_restore = (set_factory, set_handler, state)  # type: ignore[attr-defined]
    loop._introspect_registry = tasks.registry  # type: ignore[attr-defined]
    setattr(loop, _MARK, True)
    return True


def uninstrument_loop(loop: asyncio.AbstractEventLoop) -> None:
    saved = getattr(loop, "_introspect_restore", None)
    if saved is None:
        return
    set_factory, set_handler, state = saved
    for name in ("set_task_factory", "get_task_factory", "set_exception_handler",
                 "get_exception_handler", "_introspect_restore", "_introspect_registry", _MARK):
        try:
            delattr(loop, name)
        except AttributeError:
            pass
    try:
        set_factory(state["factory"])
        set_handler(state["handler"])
    except Exception:
        pass


class LoopWatcher:
    """Calls `on_new_loop(loop)` for each loop the current policy creates from now on."""

    def __init__(self, on_new_loop: Callable[[asyncio.AbstractEventLoop], None]) -> None:
        self._on_new_loop = on_new_loop
        self._policy: Any = None

    def install(self) -> None:
        policy = asyncio.get_event_loop_policy()
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
        self._policy = policy

    def uninstall(self) -> None:
        policy = self._policy
        if policy is not None:
            for name in ("new_event_loop", "_introspect_original_new_loop"):
                try:
                    delattr(policy, name)
                except AttributeError:
                    pass
            self._policy = None
