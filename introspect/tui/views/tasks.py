"""3 Tasks: every task, paged/sorted/filtered by the agent (so 100k tasks cost one page), or
grouped by kind with counts. Enter opens the task page."""

from __future__ import annotations

import asyncio
import contextlib
import time
import typing

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static
from textual.worker import WorkerCancelled, WorkerFailed

from introspect.errors import UserError
from introspect.eventtext import short_kind
from introspect.protocol import messages as m
from introspect.protocol.snapshot import KindCount, TaskRow
from introspect.textfmt import age, duration
from introspect.textsafe import escape
from introspect.tui.messages import ConfirmCancel, ConfirmExact, OpenExact, OpenTask
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View, update_line
from introspect.tui.widgets.table import RowTable
from introspect.tui.widgets.text import location, safe, tail

PAGE_SIZE = 100
EXACT_SECONDS = 30.0
PREPARE_WAIT = 0.1  # seconds the tab switch waits for a fresh page before showing the last
FRESH = 0.5  # seconds a live page stays fresh: an update does not ask for it again
# `held` sorts once the agent knows the key (TaskListRequest.sort); until then the column shows.
SORTS = ["age", "id", "name", "kind", "state", "held", "busy", "location"]
SORTS = [s for s in SORTS
         if s in typing.get_args(typing.get_type_hints(m.TaskListRequest)["sort"])]
DESCENDING_FIRST = ("age", "held", "busy")
COLUMNS = [("id", "ID"), ("name", "NAME"), ("kind", "KIND"), ("state", "STATE"),
           ("age", "AGE"), ("held", "HELD"), ("busy", "BUSY"), ("awaiting", "AWAITING"),
           ("location", "LOCATION")]
# Widest cell each column shows (location: its least), and the order columns go when the
# terminal is narrow: first listed, first dropped. LOCATION takes what is left, from the left.
WIDTHS = {"id": 6, "name": 24, "kind": 24, "state": 8, "age": 6, "held": 6, "busy": 4,
          "awaiting": 24, "location": 20}
DROP_ORDER = ["kind", "awaiting", "busy", "age", "state"]
GROUP_COLUMNS = [("kind", "KIND"), ("count", "LIVE"), ("created", "CREATED"), ("ok", "OK"),
                 ("error", "ERROR"), ("cancelled", "CANCELLED")]


def matched_count(page: m.TaskPage) -> str:
    """`1,234`, or `≥1,234` when the agent stopped counting once the page was full (a filter
    over 100k tasks answers in milliseconds that way): then it is a lower bound."""
    return f"{page.matched:,}" if page.matched_exact else f"≥{page.matched:,}"


def busy_percent(row: TaskRow) -> float:
    """CPU share of the task's life (a blocking `time.sleep` burns none: see HELD)."""
    return row.busy_seconds / row.age_seconds * 100 if row.age_seconds > 0 else 0.0


def held_text(row: TaskRow) -> str:
    """Wall time the task held the loop, blocking calls included: the honest "who froze us"."""
    return duration(row.held_seconds) if row.held_seconds > 0 else "·"


def fit_columns(width: int) -> tuple[list[str], int]:
    """The column keys that fit `width` cells, and the room left for LOCATION's text."""
    keys = [key for key, _label in COLUMNS]
    needed = sum(WIDTHS[k] + 2 for k in keys) + 1  # + the scrollbar's cell
    for key in DROP_ORDER:
        if needed <= width:
            break
        keys.remove(key)
        needed -= WIDTHS[key] + 2
    return keys, max(WIDTHS["location"], WIDTHS["location"] + width - needed)


def trouble(kinds: list[KindCount]) -> list[str]:
    """Kinds that are gone after crashing: 0 live and error finishes (a crash loop whose
    supervisor gave up), worst first."""
    gone = sorted((k for k in kinds if k.count == 0 and k.finished_error),
                  key=lambda k: (-k.finished_error, k.kind))
    return [f"{short_kind(k.kind)} gone after {k.finished_error} "
            f"crash{'es' if k.finished_error > 1 else ''}" for k in gone]


class TasksView(View):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("n", "page(1)", "Next page", show=False),
        Binding("N", "page(-1)", "Prev page", show=False),
        Binding("g", "group", "By kind"),
        Binding("c", "cancel", "Cancel"),
        Binding("x", "exact", "Exact 30s"),
        Binding("X", "exact_last", "Exact report", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sort = "age"
        self.descending = True
        self.text: str | None = None
        self.kind: str | None = None
        self.page_offset = 0
        self.grouped = False
        self.page: m.TaskPage | None = None
        self.exact_seconds = EXACT_SECONDS  # how long `x` accounts (tests shorten it)
        self._asking: m.TaskListRequest | None = None  # the request in flight
        self._shown: tuple[m.TaskListRequest, float] | None = None  # in the table, since
        self.shown_columns: list[str] = [key for key, _label in COLUMNS]
        self.location_width = WIDTHS["location"]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: text in name, kind or location; Enter applies, Esc "
                    "clears", id="task-filter", classes="hidden")
        yield Static(id="task-trouble", classes="trouble hidden")
        yield Static(id="task-status", classes="status")
        yield RowTable(id="task-table")

    def on_mount(self) -> None:
        self._set_columns()

    def _set_columns(self) -> None:
        self._shown = None
        self.shown_columns, self.location_width = fit_columns(self.size.width or 200)
        labels = dict(COLUMNS)
        self.query_one("#task-table", RowTable).set_columns(
            GROUP_COLUMNS if self.grouped else [(k, labels[k]) for k in self.shown_columns])

    def on_resize(self) -> None:
        if (self.shown_columns, self.location_width) != fit_columns(self.size.width or 200):
            self._set_columns()
            if self.page is not None and not self.grouped:
                self._fill(self.page)

    def request(self) -> m.TaskListRequest:
        return m.TaskListRequest(offset=self.page_offset, limit=PAGE_SIZE, sort=self.sort,
                                 descending=self.descending, text=self.text or None,
                                 kind=self.kind)

    def show(self, model: ObserverState) -> None:
        self._show_trouble(model)
        if self.grouped:
            self._show_groups(model)
        elif not self._up_to_date():
            self.reload()

    def _up_to_date(self) -> bool:
        """Live, the page for this query is already on its way, or came a moment ago: an
        update does not cancel and re-ask it (a filtered page of 100k tasks takes the
        agent about as long as the update interval: re-asked on every update, it would never
        arrive). A replay always re-asks: every step has its own tasks."""
        if not self.live:
            return False
        request = self.request()
        if request == self._asking:
            return True
        return self._shown is not None and self._shown[0] == request and \
            time.monotonic() - self._shown[1] < FRESH

    async def prepare(self, model: ObserverState) -> None:
        """Ask for a fresh page and hold the tab switch until it is there (a few ms from the
        agent), at most PREPARE_WAIT: one paint with the answer instead of one with the last
        page and another one right after."""
        if self.grouped:
            self._show_groups(model)
            return
        worker = self.reload()
        with contextlib.suppress(asyncio.TimeoutError, WorkerCancelled, WorkerFailed):
            await asyncio.wait_for(asyncio.shield(worker.wait()), PREPARE_WAIT)

    @work(exclusive=True, group="task-page", exit_on_error=False)
    async def reload(self) -> None:
        source = self.source
        if source is None:
            return
        request = self.request()  # a copy of what is sent (the client stamps the sent one)
        self._asking = request
        try:
            page = await source.tasks(self.request())
        except UserError as exc:
            if not self.is_attached:
                return
            update_line(self.query_one("#task-status", Static), Text(f"tasks: {exc}"))
            return
        finally:
            if self._asking is request:
                self._asking = None
        if self.grouped or not self.is_attached:
            return
        if page.offset and page.offset >= page.matched:  # the page emptied under us
            self.page_offset = max(0, (page.matched - 1) // PAGE_SIZE * PAGE_SIZE)
        self.page = page
        self._shown = (request, time.monotonic())
        self._fill(page)

    def _fill(self, page: m.TaskPage) -> None:
        keys = self.shown_columns
        cells = {
            "id": lambda row: str(row.id), "name": lambda row: safe(row.name, 24),
            "kind": lambda row: tail(row.kind, 24), "state": lambda row: row.state,
            "age": lambda row: age(row.age_seconds), "held": held_text,
            "busy": lambda row: f"{busy_percent(row):.0f}%",
            "awaiting": lambda row: safe(row.awaiting, 24),
            "location": lambda row: location(row.location, self.location_width),
        }
        makers = [cells[k] for k in keys]
        self.query_one("#task-table", RowTable).set_rows(
            (str(row.id), tuple(make(row) for make in makers)) for row in page.tasks)
        first = page.offset + 1 if page.tasks else 0
        status = Text(f"{first}–{page.offset + len(page.tasks)} of {matched_count(page)} "
                      f"matching ({page.total} live)  sort {self.sort} "
                      f"{'↓' if self.descending else '↑'}")
        if self.text:
            status.append("  filter ")
            status.append_text(safe(self.text, 30))
        if self.kind:
            status.append("  kind ")
            status.append_text(tail(self.kind, 40))
        if not self.source or not self.live:
            status.append("  (replay: the tasks the recording holds)", style="dim")
        update_line(self.query_one("#task-status", Static), status)

    def _show_groups(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        kinds = sorted(snap.tasks.by_kind, key=lambda k: (-k.count, k.kind))
        self.query_one("#task-table", RowTable).set_rows(
            (k.kind, (tail(k.kind, 56), str(k.count), str(k.created), str(k.finished_ok),
                      str(k.finished_error), str(k.finished_cancelled)))
            for k in kinds)
        update_line(self.query_one("#task-status", Static), Text(
            f"{snap.tasks.total} live tasks in {sum(1 for k in kinds if k.count)} kinds "
            f"({len(kinds)} seen)  Enter: list this kind  g: back to tasks"))

    def _show_trouble(self, model: ObserverState) -> None:
        """Trouble first: kinds that crashed until none was left, above the table."""
        snap = model.snapshot
        found = trouble(snap.tasks.by_kind) if snap is not None else []
        line = self.query_one("#task-trouble", Static)
        line.set_class(not found, "hidden")
        if found:
            text = Text("⚠ ", style="bold")
            text.append(escape("; ".join(found), 300), style="bold")
            text.append("  (g: by kind, 8: errors)", style="dim")
            update_line(line, text)

    # --- actions ---------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#task-filter", Input)
        box.remove_class("hidden")
        box.value = self.text or ""
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.text = event.value.strip() or None
        if self.text is None:
            self.kind = None  # an empty filter clears every filter
        self.page_offset = 0
        self._leave_filter()
        self.reload()

    def on_key(self, event: object) -> None:
        box = self.query_one("#task-filter", Input)
        if getattr(event, "key", "") == "escape" and box.has_focus:
            self.text = None
            self.page_offset = 0
            self._leave_filter()
            self.reload()

    def _leave_filter(self) -> None:
        box = self.query_one("#task-filter", Input)
        if not self.text:
            box.add_class("hidden")
        self.query_one("#task-table", RowTable).focus()

    def set_sort(self, sort: str, descending: bool | None = None) -> None:
        if sort not in SORTS:
            return
        if descending is None:
            descending = not self.descending if sort == self.sort else sort in DESCENDING_FIRST
        self.sort, self.descending, self.page_offset = sort, descending, 0
        self.reload()

    def action_next_sort(self) -> None:
        self.set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)],
                      descending=SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
                      in DESCENDING_FIRST)

    def action_reverse(self) -> None:
        self.set_sort(self.sort, not self.descending)

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        if not self.grouped:
            self.set_sort(event.column_key)

    def action_page(self, direction: int) -> None:
        matched = self.page.matched if self.page else 0
        if self.page and not self.page.matched_exact:
            matched += 1  # a lower bound: there may be more after it, let the agent say
        offset = self.page_offset + direction * PAGE_SIZE
        if 0 <= offset < max(matched, 1):
            self.page_offset = offset
            self.reload()

    def action_group(self) -> None:
        self.grouped = not self.grouped
        self._set_columns()
        self.show(self.observer.model)

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        key = event.row_key
        if key is None:
            return
        if self.grouped:
            self.grouped = False
            self.kind = key
            self.page_offset = 0
            self._set_columns()
            self.reload()
        else:
            self.post_message(OpenTask(int(key)))

    def action_cancel(self) -> None:
        if self.grouped or not self.page or not self.page.tasks:
            return
        table = self.query_one("#task-table", RowTable)
        row = self.page.tasks[min(table.cursor_row, len(self.page.tasks) - 1)]
        self.post_message(ConfirmCancel(row.id, row.name))

    def action_exact(self) -> None:
        self.post_message(ConfirmExact(self.exact_seconds))

    def action_exact_last(self) -> None:
        self.post_message(OpenExact())
