"""3 Tasks: every task, paged/sorted/filtered by the agent (so 100k tasks cost one page), or
grouped by kind with counts. Enter opens the task page."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.views.fmt import duration, safe, short_path, tail

PAGE_SIZE = 100
SORTS = ["age", "id", "name", "kind", "state", "busy", "location"]
COLUMNS = [("id", "ID"), ("name", "NAME"), ("kind", "KIND"), ("state", "STATE"),
           ("age", "AGE"), ("busy", "BUSY"), ("awaiting", "AWAITING"), ("location", "LOCATION")]
GROUP_COLUMNS = [("kind", "KIND"), ("count", "LIVE"), ("created", "CREATED"), ("ok", "OK"),
                 ("error", "ERROR"), ("cancelled", "CANCELLED")]


class TasksView(View):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("n", "page(1)", "Next page", show=False),
        Binding("N", "page(-1)", "Prev page", show=False),
        Binding("g", "group", "Group by kind"),
        Binding("c", "cancel", "Cancel task"),
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

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: text in name, kind or location; Enter applies, Esc "
                    "clears", id="task-filter", classes="hidden")
        yield Static(id="task-status", classes="status")
        table: DataTable = DataTable(id="task-table", cursor_type="row")
        yield table

    def on_mount(self) -> None:
        self._set_columns()

    def _set_columns(self) -> None:
        table = self.query_one("#task-table", DataTable)
        table.clear(columns=True)
        for key, label in (GROUP_COLUMNS if self.grouped else COLUMNS):
            table.add_column(label, key=key)

    def request(self) -> m.TaskListRequest:
        return m.TaskListRequest(offset=self.page_offset, limit=PAGE_SIZE, sort=self.sort,
                                 descending=self.descending, text=self.text or None,
                                 kind=self.kind)

    def show(self, model: ObserverState) -> None:
        if self.grouped:
            self._show_groups(model)
        else:
            self.reload()

    @work(exclusive=True, group="task-page", exit_on_error=False)
    async def reload(self) -> None:
        source = self.source
        if source is None:
            return
        try:
            page = await source.tasks(self.request())
        except UserError as exc:
            if not self.is_attached:
                return
            self.query_one("#task-status", Static).update(Text(f"tasks: {exc}"))
            return
        if self.grouped or not self.is_attached:
            return
        if page.offset and page.offset >= page.matched:  # the page emptied under us
            self.page_offset = max(0, (page.matched - 1) // PAGE_SIZE * PAGE_SIZE)
        self.page = page
        self._fill(page)

    def _fill(self, page: m.TaskPage) -> None:
        table = self.query_one("#task-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in page.tasks:
            busy = row.busy_seconds / row.age_seconds * 100 if row.age_seconds > 0 else 0.0
            table.add_row(str(row.id), safe(row.name, 24), tail(row.kind, 28),
                          row.state, duration(row.age_seconds), f"{busy:.0f}%",
                          safe(row.awaiting, 30), tail(short_path(row.location), 36),
                          key=str(row.id))
        if page.tasks:
            table.move_cursor(row=min(cursor, len(page.tasks) - 1))
        first = page.offset + 1 if page.tasks else 0
        status = Text(f"{first}–{page.offset + len(page.tasks)} of {page.matched} matching "
                      f"({page.total} live)  sort {self.sort} {'↓' if self.descending else '↑'}")
        if self.text:
            status.append("  filter ")
            status.append_text(safe(self.text, 30))
        if self.kind:
            status.append("  kind ")
            status.append_text(tail(self.kind, 40))
        if not self.source or not getattr(self.source, "live", False):
            status.append("  (replay: the tasks the recording holds)", style="dim")
        self.query_one("#task-status", Static).update(status)

    def _show_groups(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        table = self.query_one("#task-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        kinds = sorted(snap.tasks.by_kind, key=lambda k: (-k.count, k.kind))
        for k in kinds:
            table.add_row(tail(k.kind, 56), str(k.count), str(k.created), str(k.finished_ok),
                          str(k.finished_error), str(k.finished_cancelled), key=k.kind)
        if kinds:
            table.move_cursor(row=min(cursor, len(kinds) - 1))
        self.query_one("#task-status", Static).update(Text(
            f"{snap.tasks.total} live tasks in {sum(1 for k in kinds if k.count)} kinds "
            f"({len(kinds)} seen)  Enter: list this kind  g: back to tasks"))

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
        self.query_one("#task-table", DataTable).focus()

    def set_sort(self, sort: str, descending: bool | None = None) -> None:
        if sort not in SORTS:
            return
        if descending is None:
            descending = not self.descending if sort == self.sort else sort in ("age", "busy")
        self.sort, self.descending, self.page_offset = sort, descending, 0
        self.reload()

    def action_next_sort(self) -> None:
        self.set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)],
                      descending=SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
                      in ("age", "busy"))

    def action_reverse(self) -> None:
        self.set_sort(self.sort, not self.descending)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if not self.grouped:
            self.set_sort(str(event.column_key.value))

    def action_page(self, direction: int) -> None:
        matched = self.page.matched if self.page else 0
        offset = self.page_offset + direction * PAGE_SIZE
        if 0 <= offset < max(matched, 1):
            self.page_offset = offset
            self.reload()

    def action_group(self) -> None:
        self.grouped = not self.grouped
        self._set_columns()
        self.show(self.observer.model)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is None:
            return
        if self.grouped:
            self.grouped = False
            self.kind = key
            self.page_offset = 0
            self._set_columns()
            self.reload()
        else:
            self.observer.open_task(int(key))

    def action_cancel(self) -> None:
        if self.grouped or not self.page or not self.page.tasks:
            return
        table = self.query_one("#task-table", DataTable)
        row = self.page.tasks[min(table.cursor_row, len(self.page.tasks) - 1)]
        self.observer.confirm_cancel(row.id, row.name)
