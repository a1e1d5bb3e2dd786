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


def start(
    *,
    listen: str | list[str] | None = None,
    token: str | None = None,
    read_token: str | None = None,
    metrics_port: int | None = None,
    metrics_addr: str | None = None,
    metrics_hosts: list[str] | None = None,
    otlp: bool | None = None,
    console: bool | None = None,
    block_threshold: float | None = None,
    lag_probe_interval: float | None = None,
    kinds_limit: int | None = None,
    queue_owner_metric: bool | None = None,
    recent_errors: int | None = None,
    recent_events: int | None = None,
    error_max_age: float | None = None,
    insecure_no_auth: bool | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_client_ca: str | None = None,
    audit_log: str | None = None,
    sampling: bool | None = None,
    task_created_at: bool | None = None,
    handshake_timeout: float | None = None,
    idle_timeout: float | None = None,
    stall_timeout: float | None = None,
    allow_uids: list[int] | None = None,
    lints: str | None = None,
    host_log: str | None = None,
    console_locals: dict[str, Any] | None = None,
    console_time_limit: float | None = None,
) -> Agent:
    """Start the agent in this process and return it.

    The options are those of `introspect.config.AgentConfig`, where each is documented with
    its default; an option left at None comes from its `INTROSPECT_*` variable, else that
    default. Called again while the agent runs, it returns the running agent, unless an option
    given differs from the running agent's: then `introspect.errors.UserError` names them (stop
    first to restart with other options). Raises `UserError` for a misconfiguration too (bad
    value, port in use).
    """
    global _agent, _fork_hook_installed
    options = {name: value for name, value in locals().items() if value is not None}
    with _lock:
        if _agent is not None and _agent.running:
            _check_same_options(_agent, options)
            return _agent
        from introspect.agent import permanent

        # The modules start() brings into the host, noted so the server thread can move
        # their definitions out of the collector's way (agent/permanent.py).
        with permanent.note_imports():
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


def _check_same_options(agent: Agent, options: dict[str, Any]) -> None:
    from introspect.config import normalize
    from introspect.errors import UserError

    differ = sorted(name for name, value in options.items()
                    if normalize(name, value) != getattr(agent.config, name))
    if differ:
        # Names only: a value may be a token.
        raise UserError(f"introspect is already running with other {', '.join(differ)}; "
                        "call introspect.stop() first to start it with new options")


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
