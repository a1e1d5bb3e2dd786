"""What a view may ask beyond the model it is shown: the `DataSource` the app hands it.

Two implement it: `LiveSession` (an agent, over a connection of its own) and
`ReplayController` (a recording, answering from what it holds). The names are the client's
request names. A recording cannot act on a process: its control actions raise `UserError`
saying they need a live target, which the app shows as one line.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from introspect.protocol import messages as m

NEEDS_LIVE = "{what} needs a live target: this is a recording"


@runtime_checkable
class DataSource(Protocol):
    live: bool  # False: a recording; control actions raise UserError

    async def tasks(self, request: m.TaskListRequest) -> m.TaskPage:
        """A page of tasks, filtered and sorted as `request` asks."""
        ...

    async def task(self, task_id: int) -> m.TaskDetail:
        """One task: its row, await chain, stack and children."""
        ...

    async def thread_stacks(self) -> list[m.ThreadStack]:
        ...

    async def cancel(self, task_id: int) -> str:
        """Cancel a task in the target (control role); the agent's one-line answer."""
        ...

    async def gc_collect(self) -> str:
        """A full `gc.collect()` in the target (control role)."""
        ...

    async def exact_accounting(self, seconds: float) -> str:
        """Start exact accounting for `seconds` in the target (control role)."""
        ...

    async def exact_report(self) -> m.ExactSessionReport | None:
        """The current or latest exact accounting report; None if none ever ran."""
        ...

    async def profile(self, duration: float, *, top: int = 15) -> m.ProfileReply:
        """A py-spy profile the agent takes of its own process (control role)."""
        ...

    async def close(self) -> None:
        ...
