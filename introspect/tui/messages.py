"""What views ask of the app, as Textual messages posted upward (the app handles each in an
`on_<name>` method): views never call the app's methods."""

from __future__ import annotations

from textual.message import Message


class OpenTask(Message):
    """Show one task's page."""

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id


class OpenQueue(Message):
    """Show one queue's page (`key`: `model.queue_key` of its row)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class ConfirmCancel(Message):
    """Ask the user, then cancel the task in the target."""

    def __init__(self, task_id: int, name: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.name = name


class ConfirmGc(Message):
    """Ask the user, then run a full `gc.collect()` in the target."""


class ConfirmExact(Message):
    """Ask the user, then start exact accounting for `seconds` and show its page."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds


class OpenExact(Message):
    """Show the latest exact accounting report, starting nothing."""


class WatchTarget(Message):
    """Watch another node (the Nodes view)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
