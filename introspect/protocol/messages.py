"""Every message on the wire. Tagged msgspec Structs: the `type` field names the message.

Handshake (see `auth` for the proof):
    client → Hello(versions, client, client_nonce)
    agent  → Challenge(version, agent_nonce, auth, agent_pid)  |  ErrorReply(code="incompatible")
    client → Authenticate(proof)   # HMAC of the nonces under the token; never the token itself
    agent  → Welcome(role, pid, version)   |  ErrorReply(code="auth_failed")
Then the client sends requests and reads one reply each (`id` echoes the request's id);
`Subscribe` switches the connection to a stream of `Update`s, `ConsoleOpen` to a console.
Every field is typed; the one map is `Update.changed` (section name -> that section,
pre-encoded once by the agent for every subscriber).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from introspect.protocol.snapshot import Frame, QueueRow, Snapshot, TaskRow, ThreadRow

Role = Literal["read", "control"]


class Message(msgspec.Struct, tag_field="type", kw_only=True):
    pass


# --- handshake -------------------------------------------------------------------------
class Hello(Message, tag="hello"):
    versions: list[int]
    client: str = ""
    client_nonce: bytes = b""


class Challenge(Message, tag="challenge"):
    version: int
    agent_nonce: bytes
    auth: Literal["none", "token"]
    agent_pid: int = 0


class Authenticate(Message, tag="authenticate"):
    proof: bytes | None = None


class Welcome(Message, tag="welcome"):
    role: Role
    pid: int
    version: int


# --- requests ----------------------------------------------------------------------------
class Request(Message, kw_only=True):
    id: int = 0


class SnapshotRequest(Request, tag="snapshot"):
    top_tasks: int = 20


class TaskListRequest(Request, tag="task_list"):
    """Paged, sorted, filtered on the agent side: a client never downloads 100k tasks."""

    offset: int = 0
    limit: int = 100
    sort: Literal["id", "name", "kind", "state", "age", "location", "busy", "held"] = "age"
    descending: bool = True
    kind: str | None = None
    name: str | None = None  # substring
    state: str | None = None
    location: str | None = None  # substring
    min_age: float | None = None
    text: str | None = None  # substring of name, kind or location
    graph: bool = False  # also the await edges among the page's tasks (TaskPage.graph)


class TaskDetailRequest(Request, tag="task_detail"):
    task_id: int


class ThreadStacksRequest(Request, tag="thread_stacks"):
    pass


class QueueListRequest(Request, tag="queue_list"):
    pass


class DumpRequest(Request, tag="dump"):
    """All thread stacks plus every task's await chain (bounded by `max_tasks`)."""

    max_tasks: int = 10_000


class Subscribe(Request, tag="subscribe"):
    interval: float = 1.0
    top_tasks: int = 20


class CancelTask(Request, tag="cancel_task"):
    task_id: int
    message: str | None = None


class GcCollect(Request, tag="gc_collect"):
    generation: int = 2


class SetInterval(Request, tag="set_interval"):
    interval: float


class Ping(Request, tag="ping"):
    pass


class ConsoleOpen(Request, tag="console_open"):
    """Switch this connection to a console session (control role, agent started with the
    console enabled). Then the client sends ConsoleInput and reads ConsoleOutput."""

    width: int = 80
    height: int = 24


class ConsoleInput(Request, tag="console_input"):
    data: str


class ProfileRequest(Request, tag="profile"):
    """The agent samples its own process with py-spy (control role) and returns the hottest
    functions."""

    duration: float = 5.0
    rate: int = 100
    top: int = 30


class ExactAccounting(Request, tag="exact_start"):
    """Switch on exact per-task accounting (steps, busy time, scheduling delay) for a
    bounded time (control role: it costs the host more than the defaults)."""

    seconds: float = 30.0


class ExactReportRequest(Request, tag="exact_report"):
    max_tasks: int = 1000  # per-task rows in the reply, busiest first (at most 10000)


class StuckRequest(Request, tag="stuck"):
    """Groups of tasks of one kind all waiting on the same lock/queue/future."""

    min_tasks: int = 2
    limit: int = 20


class HistoryRequest(Request, tag="history"):
    """The agent's ring of recent samples (1 s apart, up to 10 minutes), oldest first."""

    max_samples: int = 600


# --- replies -----------------------------------------------------------------------------
class Reply(Message, kw_only=True):
    id: int = 0


class ErrorReply(Reply, tag="error"):
    code: str  # bad_request | forbidden | not_found | auth_failed | incompatible | unavailable
    message: str


class SnapshotReply(Reply, tag="snapshot_reply"):
    snapshot: Snapshot


class TaskPage(Reply, tag="task_page"):
    total: int
    matched: int
    offset: int
    tasks: list[TaskRow]
    matched_exact: bool = True  # False: `matched` is a lower bound (a filtered scan stopped
                                # counting once the page was full and its time was up)
    # Asked with `graph`: who awaits whom among the page's tasks (None: not asked, or an
    # agent older than the field, which a client then asks with a dump).
    graph: list[AwaitEdge] | None = None


class AwaitLink(msgspec.Struct, kw_only=True):
    """One step of an await chain: a coroutine frame, or the awaitable at the bottom."""

    what: str
    location: str = ""
    detail: str = ""


class TaskRef(msgspec.Struct, kw_only=True):
    """Another task, as the await graph names it: `via` is how the two are linked
    ("task": a plain `await`, "gather", "taskgroup")."""

    id: int
    name: str = ""
    kind: str = ""
    via: str = "task"


class AwaitEdge(msgspec.Struct, kw_only=True):
    """`waiter` awaits `awaited` (task ids) through `via`: task | gather | taskgroup."""

    waiter: int
    via: str
    awaited: int


class TaskDetail(Reply, tag="task_detail_reply"):
    task: TaskRow
    await_chain: list[AwaitLink]
    stack: list[Frame]
    children: list[int]
    created_at: str = ""
    coroutine: str = ""
    waiting_on: str = ""
    # How long it has waited on its current awaitable: exact for `asyncio.sleep`, otherwise
    # since the agent first saw it waiting on that same object (a lower bound); None when it
    # is not waiting or nothing has seen it wait yet.
    waiting_seconds: float | None = None
    awaits: list[TaskRef] = msgspec.field(default_factory=list)  # tasks this one waits for
    awaited_by: list[TaskRef] = msgspec.field(default_factory=list)  # tasks waiting for it


class ThreadStack(msgspec.Struct, kw_only=True):
    thread: ThreadRow
    frames: list[Frame]  # outermost first


class ThreadStacks(Reply, tag="thread_stacks_reply"):
    threads: list[ThreadStack]


class QueueList(Reply, tag="queue_list_reply"):
    queues: list[QueueRow]


class TaskChain(msgspec.Struct, kw_only=True):
    task: TaskRow
    await_chain: list[AwaitLink]


class DumpReply(Reply, tag="dump_reply"):
    time: float
    pid: int
    threads: list[ThreadStack]
    tasks: list[TaskChain]
    tasks_total: int
    loop_blocked_for_seconds: float = 0.0
    # Who awaits whom among all live tasks (not only the `tasks` shown), waiter order kept.
    graph: list[AwaitEdge] = msgspec.field(default_factory=list)


class Update(Reply, tag="update"):
    """One streamed update. `full` on the first; later ones carry only what changed
    (None = unchanged). `dropped` counts updates this client missed by being slow."""

    seq: int
    time: float
    full: bool
    dropped: int = 0
    snapshot: Snapshot | None = None
    # section name (a `Snapshot` field) -> that section, encoded once per tick by the agent
    # and shared by every subscriber; `changed_sections()` decodes them.
    changed: dict[str, msgspec.Raw] | None = None


class Ack(Reply, tag="ack"):
    detail: str = ""


class ConsoleOutput(Reply, tag="console_output"):
    data: str
    closed: bool = False


class ProfileFunction(msgspec.Struct, kw_only=True):
    function: str
    location: str
    own: float  # share of samples with this function innermost
    total: float  # share of samples with this function anywhere on the stack


class ProfileReply(Reply, tag="profile_reply"):
    samples: int
    duration: float
    functions: list[ProfileFunction]


class ExactTaskStats(msgspec.Struct, kw_only=True):
    id: int
    name: str
    kind: str
    steps: int
    busy_seconds: float
    delay_seconds_total: float
    delay_max_seconds: float


class ExactKindStats(msgspec.Struct, kw_only=True):
    """Histograms are `[[upper bound seconds, count], ...]` on log2 microsecond buckets,
    non-cumulative, empty buckets left out."""

    steps: int
    busy_seconds: float
    delay_seconds_total: float
    busy_histogram: list[tuple[float, int]]
    delay_histogram: list[tuple[float, int]]


class ExactCallbacks(msgspec.Struct, kw_only=True):
    """Handles that are not steps of a task the agent knows (plain callbacks)."""

    steps: int
    busy_seconds: float


class ExactSessionReport(msgspec.Struct, kw_only=True):
    """One exact session (docs/blocking.md): per task, busiest first, and per kind."""

    started: float  # wall-clock time
    seconds: float  # the session's length as asked
    elapsed: float
    running: bool
    implementation: Literal["c", "python"]
    tasks: list[ExactTaskStats]
    kinds: dict[str, ExactKindStats]
    callbacks: ExactCallbacks


class ExactReport(Reply, tag="exact_report_reply"):
    """The current (or last) exact session's report; None when none was started."""

    report: ExactSessionReport | None = None


class StuckGroup(msgspec.Struct, kw_only=True):
    kind: str
    count: int
    waiting_on: str
    wait_kind: str
    since_seconds: float
    tasks: list[int]  # ids of the first 50
    message: str


class StuckReport(Reply, tag="stuck_reply"):
    groups: list[StuckGroup]


class HistorySample(msgspec.Struct, kw_only=True):
    """One second of the recent past (agent/history.py). Counters are totals since start:
    rates come from consecutive samples."""

    time: float  # wall clock
    lag_p50: float
    lag_p99: float
    lag_max: float
    ready: int
    tasks: int
    rss_bytes: int
    cpu_seconds: float
    threads: int
    gc_collections: int
    gc_pause_seconds_total: float
    errors_total: int
    tasks_by_kind: dict[str, int] = msgspec.field(default_factory=dict)  # the 20 largest
    queue_lengths: dict[str, int] = msgspec.field(default_factory=dict)  # the 20 longest


class HistoryReply(Reply, tag="history_reply"):
    period: float
    samples: list[HistorySample]


ClientMessage = (
    Hello
    | Authenticate
    | SnapshotRequest
    | TaskListRequest
    | TaskDetailRequest
    | ThreadStacksRequest
    | QueueListRequest
    | DumpRequest
    | Subscribe
    | CancelTask
    | GcCollect
    | SetInterval
    | Ping
    | ConsoleOpen
    | ConsoleInput
    | ProfileRequest
    | ExactAccounting
    | ExactReportRequest
    | StuckRequest
    | HistoryRequest
)
AgentMessage = (
    Challenge
    | Welcome
    | ErrorReply
    | SnapshotReply
    | TaskPage
    | TaskDetail
    | ThreadStacks
    | QueueList
    | DumpReply
    | Update
    | Ack
    | ConsoleOutput
    | ProfileReply
    | ExactReport
    | StuckReport
    | HistoryReply
)

CONTROL_REQUESTS: tuple[type, ...] = (CancelTask, GcCollect, ConsoleOpen, ProfileRequest,
                                      ExactAccounting)

_encoder = msgspec.msgpack.Encoder()
_client_decoder = msgspec.msgpack.Decoder(ClientMessage)
_agent_decoder = msgspec.msgpack.Decoder(AgentMessage)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode_client_message(data: bytes) -> Message:
    """Decode untrusted bytes from a client; raises msgspec.ValidationError/DecodeError."""
    return _client_decoder.decode(data)


def decode_agent_message(data: bytes) -> Message:
    return _agent_decoder.decode(data)


def changed_sections(update: Update) -> dict[str, Any]:
    """The changed sections of `update` as plain data (what `Snapshot.to_dict()` holds for
    them); empty for a full update."""
    return {name: msgspec.msgpack.decode(raw) for name, raw in (update.changed or {}).items()}
