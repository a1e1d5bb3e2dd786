"""The asyncio facts the agent reads from other threads, through public APIs only, the same way
on every supported CPython (3.11 to 3.14).

- The running task: `asyncio.current_task(loop)`. Readable from any thread: a dict lookup in
  `asyncio.tasks._current_tasks` up to 3.13; 3.14 keeps the running task on the loop thread's
  state (that dict stays empty there) and `current_task(loop)` finds that thread's state.
- A loop's tasks when the agent's own registry is not there: `asyncio.all_tasks(loop)`
  (3.12 removed `asyncio.tasks._all_tasks`, and it never held eager tasks).
"""

from __future__ import annotations

import asyncio
from typing import Any

_current_task = asyncio.current_task
_all_tasks = asyncio.all_tasks


def running_task(loop: asyncio.AbstractEventLoop | None) -> Any:
    """The task `loop` is running a step of right now, or None (between steps, in a plain
    callback, no loop). Safe from any thread and from a signal handler; never raises."""
    if loop is None:
        return None
    try:
        return _current_task(loop)
    except Exception:  # a loop class of the app's own that asyncio doesn't know
        return None


def loop_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task]:
    """The not-done tasks of `loop`, eager ones included; tolerates another thread creating
    tasks meanwhile (the copy is retried, then given up: an empty list)."""
    for _ in range(100):
        try:
            return list(_all_tasks(loop))
        except RuntimeError:  # the set changed size while it was copied
            continue
    return []
