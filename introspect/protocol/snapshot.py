"""The snapshot (schema 1 of PRODUCT.md) as typed structs. Fields may be added, never renamed.

`Snapshot.to_dict()` gives the JSON shape `introspect snapshot --json` prints. Events are
tagged by `kind` (`{time, kind, ...}` in JSON); a new event kind is a wire change (a client
rejects a tag it does not know), so it comes with a new protocol version.
"""

from __future__ import annotations

from typing import Any

import msgspec

from introspect.protocol.version import SNAPSHOT_SCHEMA


class Node(msgspec.Struct, kw_only=True):
    pid: int
    argv: list[str]
    hostname: str
    python: str
    started_at: float
    ppid: int = 0
    executable: str = ""
    platform: str = ""
    agent_version: str = ""


class ProcessInfo(msgspec.Struct, kw_only=True):
    uptime_seconds: float
    cpu_seconds: float
    rss_bytes: int
    open_fds: int
    threads: int
    children: list[int] = []
    max_fds: int = 0
    cpu_percent: float = 0.0


class LoopInfo(msgspec.Struct, kw_only=True):
    running: bool
    lag_seconds: float
    lag_p99_seconds: float
    ready: int
    scheduled: int
    blocked_for_seconds: float
    lag_p50_seconds: float = 0.0
    lag_max_seconds: float = 0.0
    loop_class: str = ""
    thread: str = ""


class KindCount(msgspec.Struct, kw_only=True):
    kind: str
    count: int
    created: int = 0
    finished_ok: int = 0
    finished_error: int = 0
    finished_cancelled: int = 0


class TaskRow(msgspec.Struct, kw_only=True):
    id: int
    name: str
    kind: str
    state: str
    age_seconds: float
    location: str
    awaiting: str
    parent: int | None = None
    busy_seconds: float = 0.0
    held_seconds: float = 0.0  # wall time it held the loop, blocking calls included


class TasksInfo(msgspec.Struct, kw_only=True):
    total: int
    by_kind: list[KindCount]
    top: list[TaskRow]
    created_total: int = 0
    finished_total: int = 0


class QueueRow(msgspec.Struct, kw_only=True):
    name: str
    type: str
    length: int
    capacity: int
    getters: int
    putters: int
    created_at: str
    watched: bool = False


class ThreadRow(msgspec.Struct, kw_only=True):
    name: str
    ident: int
    native_id: int | None
    daemon: bool
    cpu_seconds: float
    location: str
    is_loop: bool = False
    is_agent: bool = False


class ExecutorRow(msgspec.Struct, kw_only=True):
    name: str
    type: str
    queue_length: int
    workers: int
    max_workers: int
    busy: int = 0
    created_at: str = ""


class GcInfo(msgspec.Struct, kw_only=True):
    collections: list[int]
    collected: list[int]
    uncollectable: list[int]
    pause_seconds_total: float
    pause_max_seconds: float
    enabled: bool = True
    thresholds: list[int] = []
    counts: list[int] = []
    objects: int = 0


class ErrorReport(msgspec.Struct, kw_only=True):
    time: float
    source: str  # task | thread | loop | callback
    type: str
    message: str
    where: str
    task: str | None = None
    retrieved: bool | None = None
    traceback: str = ""
    kind: str | None = None
    thread: str | None = None


class ErrorsInfo(msgspec.Struct, kw_only=True):
    total: int
    recent: list[ErrorReport]
    by_type: dict[str, int] = {}


class AgentInfo(msgspec.Struct, kw_only=True):
    version: str
    listen: list[str]
    metrics: str | None = None
    otlp: bool = False
    console: bool = False
    block_threshold: float = 0.1
    collector_errors: dict[str, int] = {}
    clients: int = 0
    collect_seconds: float = 0.0
    limitations: list[str] = []  # what the agent can't do for this loop (uvloop: exact mode...)


class Frame(msgspec.Struct, kw_only=True, omit_defaults=True):
    function: str
    file: str
    line: int
    code: str = ""


class TaskRef(msgspec.Struct, kw_only=True, frozen=True):
    """A task named in an event: its id (`TaskMeta.seq`; negative for a task the agent did
    not see created), name and kind."""

    id: int
    name: str
    kind: str


class Event(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind"):
    """Base of the events in `Snapshot.events`; immutable: an ongoing block is replaced in
    the event log, never changed under a snapshot that may be encoding it."""

    time: float


class BlockingEvent(Event, tag="blocking", kw_only=True):
    """A step or callback held the loop past the threshold (docs/blocking.md)."""

    duration: float
    ongoing: bool
    task: TaskRef | None  # None: a plain callback held the loop (see `callback`)
    callback: str | None
    stack: list[Frame]  # the loop thread's stack when caught, outermost first
    location: str  # the innermost frame of the app's own code
    culprit: str  # the call it was in (`time.sleep`) or the function running
    single_step: bool  # the same task held the loop the whole time
    threshold: float
    exact: bool  # False: a lower bound from the lag probe (no Python selector to time)
    loop_thread_cpu_share: float | None


class LintEvent(Event, tag="lint", kw_only=True, omit_defaults=True):
    """A runtime lint's finding (docs/blocking.md). The detail fields present depend on
    the lint; the others are left out of the JSON."""

    lint: str
    subject: str
    message: str
    duration: float | None = None  # loop_blocked, task_never_yields
    location: str | None = None
    task: TaskRef | str | None = None  # a task, or a crash report's task name
    coroutine: str | None = None  # coroutine_never_awaited
    type: str | None = None  # exception_never_retrieved: the exception type
    growth_from: int | None = msgspec.field(default=None, name="from")  # growth lints
    growth_to: int | None = msgspec.field(default=None, name="to")
    window: float | None = None
    executor: str | None = None  # executor_saturated
    queue_length: int | None = None
    workers: int | None = None
    max_workers: int | None = None


AnyEvent = BlockingEvent | LintEvent


class Snapshot(msgspec.Struct, kw_only=True):
    schema: int = SNAPSHOT_SCHEMA
    time: float
    node: Node
    process: ProcessInfo
    loop: LoopInfo
    tasks: TasksInfo
    queues: list[QueueRow]
    threads: list[ThreadRow]
    gc: GcInfo
    errors: ErrorsInfo
    events: list[AnyEvent]
    executors: list[ExecutorRow] = []
    agent: AgentInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)
