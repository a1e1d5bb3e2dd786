"""introspect: observe a running Python service like Erlang's observer.

    import introspect
    agent = introspect.start()            # idempotent; returns the running Agent
    introspect.watch(my_queue, name="comments")
    snap = agent.snapshot(); snap.to_dict()
    introspect.stop()

Options come from keyword arguments over `INTROSPECT_*` variables (see README).
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from introspect.agent.core import Agent

__version__ = "0.1.0"  # the only copy: pyproject and the agent read it from here
__all__ = ["get_agent", "start", "stop", "watch"]

_agent: Agent | None = None
_lock = threading.Lock()
_fork_hook_installed = False


def start(**options: Any) -> Agent:
    """Start the agent in this process (idempotent) and return it.

    Keyword options are those of `introspect.config.AgentConfig` (e.g. `listen`, `token`,
    `metrics_port`, `otlp`, `console`, `block_threshold`, `console_locals`); unset ones come
    from `INTROSPECT_*` environment variables. Raises `introspect.errors.UserError` for a
    misconfiguration (bad value, port in use).
    """
    global _agent, _fork_hook_installed
    with _lock:
        if _agent is not None and _agent.running:
            return _agent
        from introspect.agent.core import Agent
        from introspect.config import from_env

        agent = Agent(from_env(**options))
        agent.start()
        _agent = agent
        if not _fork_hook_installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            atexit.register(stop)
            _fork_hook_installed = True
        return agent


def stop() -> None:
    """Stop the agent: close its sockets, remove its announcement, restore every hook."""
    global _agent
    with _lock:
        agent, _agent = _agent, None
    if agent is not None:
        agent.stop()


def get_agent() -> Agent | None:
    return _agent


def watch(obj: Any, name: str | None = None) -> Any:
    """Track a queue-like object (anything with `qsize()` or `__len__`) under `name`.

    Queues created after `start()` are discovered automatically; `watch` names them or adds
    objects discovery can't see. Returns `obj`. Without a running agent it does nothing.
    """
    agent = _agent
    if agent is None:
        return obj
    return agent.watch(obj, name)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    agent = _agent
    if agent is not None:
        try:
            agent.after_fork_in_child()
        except Exception:
            pass
