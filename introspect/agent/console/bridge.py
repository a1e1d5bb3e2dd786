"""The agent's "console" extension: serves console sessions on the agent's own connections.

Why not aiomonitor's console: aiomonitor 0.7.1 serves its console (aioconsole) on a TCP port
of 127.0.0.1 that any local user can reach, with no authentication, and its telnet/web UIs on
two more. Our sessions travel over the agent's channel only (0600 Unix socket, or TCP with a
token and the control role), every line is audited, and nothing else listens. See
docs/console.md.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from introspect.agent.console import output
from introspect.agent.late_imports import late_import

if TYPE_CHECKING:
    from introspect.agent.console.session import ConsoleSession
    from introspect.agent.core import Agent
    from introspect.agent.server import AgentServer
    from introspect.agent.server.handshake import Session
    from introspect.protocol import messages as m


def start_for_agent(agent: Agent) -> ConsoleExtension | None:
    if not agent.config.console:
        return None
    return ConsoleExtension(agent)


class ConsoleExtension:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.sessions: set[ConsoleSession] = set()
        self._lock = threading.Lock()
        self._private: _PrivateLoop | None = None

    async def serve(self, server: AgentServer, session: Session, request: m.ConsoleOpen,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Called by the agent's handlers (control role checked, `console_open` audited).
        The session's modules (and the helpers') are imported here, at the first console: an
        enabled console nobody opens adds nothing to what the host's GC walks."""
        console_session = late_import("introspect.agent.console.session").ConsoleSession
        console = console_session(self, server, session, request, reader, writer)
        self.sessions.add(console)
        output.acquire()
        try:
            await console.run()
        finally:
            output.release()
            self.sessions.discard(console)

    # --- where code runs -----------------------------------------------------------------
    def app_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self.agent.loop
        if loop is not None and not loop.is_closed() and loop.is_running():
            return loop
        return None

    def target_loop(self) -> asyncio.AbstractEventLoop:
        """The app's running loop; without one, a loop on a console thread of our own."""
        loop = self.app_loop()
        if loop is not None:
            return loop
        with self._lock:
            if self._private is None:
                self._private = _PrivateLoop(self.agent)
            return self._private.loop

    # --- what the user sees --------------------------------------------------------------
    def namespace(self) -> dict[str, Any]:
        import introspect
        make_helpers = late_import("introspect.agent.console.helpers").make_helpers

        ns: dict[str, Any] = {"__name__": "__console__", "__builtins__": builtins,
                              "asyncio": asyncio, "introspect": introspect, "agent": self.agent}
        ns.update(make_helpers(self.agent))
        ns.update(self.app_locals())
        return ns

    def app_locals(self) -> dict[str, Any]:
        """`console_locals` from `introspect.start()`: a mapping, or a callable returning one
        (called per session, so it can name objects created after start())."""
        supplied: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = \
            self.agent.config.console_locals
        try:
            if callable(supplied):
                supplied = supplied()
            return dict(supplied or {})
        except Exception as exc:
            self.agent.collector_errors.record("console", exc)
            return {}

    def banner(self, namespace: dict[str, Any]) -> str:
        loop = self.app_loop()
        if loop is not None:
            where = f"inside the program's event loop ({_thread_name(loop)})"
        else:
            where = "in a console thread: no running event loop is observed"
        app_names = sorted(self.app_locals())
        lines = [
            f"introspect console: pid {os.getpid()}, Python {sys.version.split()[0]}, "
            f"running {where}.",
            "Helpers: tasks(), task(id), queues(), cancel(id), snapshot(), pstree(), "
            "awaits(task); also asyncio, "
            "agent, introspect.",
        ]
        if app_names:
            lines.append("From the program: " + ", ".join(app_names[:30]))
        lines.append("Top-level `await` works. Ctrl-C cancels, Ctrl-D leaves. Every line is "
                     "written to the audit log.")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        with self._lock:
            private, self._private = self._private, None
        if private is not None:
            private.stop()
        output.uninstall()


def _thread_name(loop: asyncio.AbstractEventLoop) -> str:
    ident = getattr(loop, "_thread_id", None)
    for thread in threading.enumerate():
        if thread.ident == ident:
            return f"thread {thread.name}"
    return "its thread"


class _PrivateLoop:
    """For programs without a running asyncio loop (threads only): console code runs on a
    daemon thread's loop, so top-level `await` still works."""

    def __init__(self, agent: Agent) -> None:
        self.loop = asyncio.SelectorEventLoop()  # not the policy: never mistaken for the app's
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(agent,),
                                       name="introspect-console", daemon=True)
        self.thread.start()
        self._ready.wait(5.0)

    def _run(self, agent: Agent) -> None:
        agent.agent_thread_ids.add(threading.get_ident())
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def stop(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            return
        if self.thread is not threading.current_thread():
            self.thread.join(2.0)
