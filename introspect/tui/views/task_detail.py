"""The task page: where it is stuck (await chain, innermost first to outermost), its stack,
parent and children, creation site, the tasks it awaits and that await it (each selectable:
Enter opens that task's page); cancel with confirmation."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.textfmt import age, short_path
from introspect.tui.messages import ConfirmCancel, OpenTask
from introspect.tui.views.base import source_of
from introspect.tui.widgets.text import safe


def render_detail(detail: m.TaskDetail) -> Text:
    t = detail.task
    out = Text()
    out.append("task ", style="bold")
    out.append(f"#{t.id} ")
    out.append_text(safe(t.name, 80, style="bold"))
    out.append("\nkind       ")
    out.append_text(safe(t.kind, 120))
    out.append(f"\nstate      {t.state}, age {age(t.age_seconds)}")
    out.append(f"\nheld loop  {age(t.held_seconds)} (wall, blocking calls included), "
               f"on CPU {age(t.busy_seconds)}")
    if detail.waiting_on:
        out.append("\nwaiting on ")
        out.append_text(safe(detail.waiting_on, 120))
        if detail.waiting_seconds is not None:
            out.append(f" for {age(detail.waiting_seconds)}")
    out.append("\ncreated at ")
    out.append_text(safe(detail.created_at or "?", 160))
    if detail.coroutine:
        out.append("\ncoroutine  ")
        out.append_text(safe(detail.coroutine, 120))
    out.append(f"\nparent     {'#' + str(t.parent) if t.parent is not None else 'none'}")
    kids = ", ".join(f"#{c}" for c in detail.children[:50])
    more = f" … {len(detail.children) - 50} more" if len(detail.children) > 50 else ""
    out.append(f"\nchildren   {kids or 'none'}{more}")
    return out


MAX_LINKS = 50  # per direction; a gather of 1000 says how many more


def link_options(detail: m.TaskDetail) -> list[Option]:
    """One selectable line per task this one awaits or is awaited by (id = the task's)."""
    options: list[Option] = []
    for label, refs, none in (("awaits    ", detail.awaits, "no task"),
                              ("awaited by", detail.awaited_by, "no task (a root)")):
        if not refs:
            options.append(Option(Text(f"{label} {none}", style="dim"), disabled=True))
        for ref in refs[:MAX_LINKS]:
            text = Text(f"{label} ")
            text.append(f"#{ref.id} ")
            text.append_text(safe(ref.name, 40, style="bold"))
            text.append("  ")
            text.append_text(safe(ref.kind, 60))
            text.append(f"  via {ref.via}", style="italic")
            options.append(Option(text, id=f"{label.strip()}:{ref.id}:{len(options)}"))
        if len(refs) > MAX_LINKS:
            options.append(Option(Text(f"{label} … {len(refs) - MAX_LINKS} more", style="dim"),
                                  disabled=True))
    return options


def render_chain_and_stack(detail: m.TaskDetail) -> Text:
    out = Text("\n")
    out.append("AWAIT CHAIN", style="bold")
    if not detail.await_chain:
        out.append("\n  (not available)", style="dim")
    for depth, link in enumerate(detail.await_chain):
        out.append("\n  " + "  " * min(depth, 10) + ("└ " if depth else ""))
        out.append_text(safe(link.what, 100, style="bold"))
        if link.location:
            out.append("  ")
            out.append_text(safe(short_path(link.location), 100))
        if link.detail:
            out.append("  ")
            out.append_text(safe(link.detail, 100, style="italic"))
    out.append("\n\nSTACK", style="bold")
    if not detail.stack:
        out.append("\n  (not available)", style="dim")
    for frame in detail.stack:
        out.append("\n  ")
        out.append_text(safe(f"{short_path(frame.file)}:{frame.line} {frame.function}", 160))
    return out


class TaskDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    #task-links { height: auto; max-height: 14; border: none; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "close", "Back"), Binding("q", "close", "Back", show=False),
                Binding("c", "cancel", "Cancel task"), Binding("r", "load", "Refresh")]

    def __init__(self, task_id: int) -> None:
        super().__init__(classes="task-detail")  # no id: one task page may open another
        self.task_id = task_id
        self.detail: m.TaskDetail | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="page"):
            yield Static(Text(f"task #{self.task_id}", style="bold"), classes="page-title")
            with VerticalScroll():
                yield Static(Text("loading…"), id="task-detail-body", classes="page-body")
                links = OptionList(id="task-links", classes="page-body")
                links.display = False
                yield links
                yield Static(id="task-detail-chain", classes="page-body")
            yield Static("Enter: open the selected awaits/awaited-by task   c: cancel this task"
                         "   r: refresh   Esc: back", classes="page-hint")

    def on_mount(self) -> None:
        self.action_load()

    @work(exclusive=True, group="task-detail", exit_on_error=False)
    async def action_load(self) -> None:
        body = self.query_one("#task-detail-body", Static)
        try:
            source = source_of(self)
            if source is None:
                return
            self.detail = await source.task(self.task_id)
        except UserError as exc:
            if not self.is_attached:
                return
            body.update(Text(f"task #{self.task_id}: {exc}"))
            return
        if self.is_attached:
            body.update(render_detail(self.detail))
            links = self.query_one("#task-links", OptionList)
            links.clear_options()
            options = link_options(self.detail)
            links.add_options(options)
            links.display = True
            selectable = [i for i, option in enumerate(options) if not option.disabled]
            if selectable:
                links.highlighted = selectable[0]
                links.focus()
            self.query_one("#task-detail-chain", Static).update(
                render_chain_and_stack(self.detail))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id
        if option_id:
            self.post_message(OpenTask(int(option_id.split(":")[1])))

    def action_cancel(self) -> None:
        name = self.detail.task.name if self.detail else ""
        self.post_message(ConfirmCancel(self.task_id, name))

    def action_close(self) -> None:
        self.dismiss(None)
