"""`ProfileRequest`: the agent profiles its own process with py-spy and answers with the
hottest functions, so a remote user with the control role gets a profile without a shell on
the host.

py-spy runs as a child process, waited on by a short-lived thread of the agent, so neither
the app's loop nor the agent's server loop is blocked while it samples. It runs with
`--nonblocking`: the host is never paused for a sample (the price is a slightly less
accurate stack now and then). One profile at a time per process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from introspect.errors import UserError
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.core import Agent

MAX_DURATION = 300.0
MAX_RATE = 1000
MAX_TOP = 500

_busy = threading.Lock()


async def profile_self(agent: Agent, request: m.ProfileRequest) -> m.Reply:
    """Sample this process for `request.duration` s; the top functions by own share."""
    duration = min(max(request.duration, 0.1), MAX_DURATION)
    rate = min(max(request.rate, 1), MAX_RATE)
    top = min(max(request.top, 1), MAX_TOP)
    if not _busy.acquire(blocking=False):
        return m.ErrorReply(code="unavailable", message="a profile of this process is already "
                                                        "running; try again when it ends")
    try:
        report = await _in_thread(agent, _record_and_load, duration, rate)
    except UserError as exc:  # no py-spy, no ptrace permission...: py-spy's own diagnosis
        return m.ErrorReply(code="unavailable", message=f"cannot profile PID {os.getpid()}: "
                                                        f"{exc}"[:1000])
    functions = [m.ProfileFunction(function=f.name, location=f"{f.location} {f.name}",
                                   own=round(f.own_share, 6), total=round(f.total_share, 6))
                 for f in report.functions[:top]]
    return m.ProfileReply(samples=report.samples, duration=duration, functions=functions)


def _record_and_load(duration: float, rate: int) -> Any:
    try:
        return _record(duration, rate)
    finally:
        _busy.release()  # here, not in the request: py-spy may outlive a cancelled request


def _record(duration: float, rate: int) -> Any:
    import tempfile  # here: with what it imports, ~600 objects the host's GC would walk

    from introspect.profiling import pyspy, report

    with tempfile.TemporaryDirectory(prefix="introspect-profile-") as tmp:
        path = Path(tmp) / "profile.speedscope.json"
        pyspy.record(os.getpid(), duration, "speedscope", path, rate=rate, nonblocking=True)
        return report.load_speedscope(path)


async def _in_thread(agent: Agent, fn: Any, *args: Any) -> Any:
    """Run `fn` on a daemon thread of the agent's own (not an executor: the agent's executor
    discovery would show it as the app's, and it must not outlive a stopping host)."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        agent.agent_thread_ids.add(threading.get_ident())
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        finally:
            agent.agent_thread_ids.discard(threading.get_ident())

    try:
        threading.Thread(target=run, name="introspect-profile", daemon=True).start()
    except BaseException:
        _busy.release()
        raise
    return await asyncio.wrap_future(future)
