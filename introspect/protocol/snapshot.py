"""The snapshot (schema 1 of PRODUCT.md) as typed structs. Fields may be added, never renamed.

`Snapshot.to_dict()` gives the JSON shape `introspect snapshot --json` prints.
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
    events: list[dict[str, Any]]
    executors: list[ExecutorRow] = []
    agent: AgentInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)
