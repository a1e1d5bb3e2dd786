"""6 Threads: threads and executors with CPU, and the selected thread's current stack."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.textfmt import short_path
from introspect.tui.state.model import ObserverState
from introspect.tui.views.base import View
from introspect.tui.widgets.text import safe

PROFILE_SECONDS = 3.0


class ThreadsView(View):
    BINDINGS = [Binding("f", "profile", "Profile (live)")]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.stacks: dict[int, list[m.Frame]] = {}
        self.profiling = False
        self.last_profile: m.ProfileReply | None = None

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(id="thread-table", cursor_type="row")
        yield table
        yield Static(id="executor-list", classes="status")
        yield Static(id="thread-stack", classes="stack")
        yield Static(id="profile-result", classes="stack")

    def on_mount(self) -> None:
        table = self.query_one("#thread-table", DataTable)
        for key, label in (("name", "THREAD"), ("role", "ROLE"), ("cpu", "CPU%"),
                           ("cpu_s", "CPU s"), ("native", "TID"), ("daemon", "DAEMON"),
                           ("location", "NOW IN")):
            table.add_column(label, key=key)

    def show(self, model: ObserverState) -> None:
        snap = model.snapshot
        if snap is None:
            return
        table = self.query_one("#thread-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for t in snap.threads:
            role = "loop" if t.is_loop else ("agent" if t.is_agent else "")
            cpu = model.thread_cpu_percent.get(t.ident)
            table.add_row(safe(t.name, 28), role, f"{cpu:.0f}" if cpu is not None else "-",
                          f"{t.cpu_seconds:.2f}", str(t.native_id or ""),
                          "yes" if t.daemon else "no", safe(short_path(t.location), 50),
                          key=str(t.ident))
        if snap.threads:
            table.move_cursor(row=min(cursor, len(snap.threads) - 1))
        ex = Text("EXECUTORS", style="bold")
        if not snap.executors:
            ex.append("  none seen", style="dim")
        for e in snap.executors:
            ex.append("\n  ")
            ex.append_text(safe(e.name, 30))
            ex.append(f"  {e.type}  workers {e.workers}/{e.max_workers}  busy {e.busy}  "
                      f"queued {e.queue_length}")
        self.query_one("#executor-list", Static).update(ex)
        self.load_stacks()
        self._show_stack()

    @work(exclusive=True, group="thread-stacks", exit_on_error=False)
    async def load_stacks(self) -> None:
        if self.source is None or not self.live:
            return
        try:
            stacks = await self.source.thread_stacks()
        except UserError:
            return
        self.stacks = {s.thread.ident: s.frames for s in stacks}
        if self.is_attached:
            self._show_stack()

    def action_profile(self) -> None:
        """`f`: sample the target with py-spy, 3 s at a time, and show the hottest functions
        until `f` is pressed again (needs the control role and py-spy on the target's host)."""
        if not self.profiling and self.observer.control_refused("profiling"):
            return
        self.profiling = not self.profiling
        if self.profiling:
            self._render_profile(f"profiling for {PROFILE_SECONDS:g} s…")
            self.run_profiles()
        else:
            self.workers.cancel_group(self, "profile")
            self._render_profile("profiling stopped (f to start again)")

    @work(exclusive=True, group="profile", exit_on_error=False)
    async def run_profiles(self) -> None:
        while self.profiling:
            try:
                reply = await self.source.profile(PROFILE_SECONDS)
            except UserError as exc:
                self.profiling = False
                self.app.notify(str(exc), severity="error", timeout=8)
                self._render_profile("profiling failed (f to retry)")
                return
            self.last_profile = reply
            if self.is_attached:
                self._render_profile()

    def _render_profile(self, status: str | None = None) -> None:
        out = Text("HOTTEST FUNCTIONS", style="bold")
        reply = self.last_profile
        if reply is not None:
            out.append(f"  {reply.samples} samples over {reply.duration:g} s"
                       + ("  (live, f to stop)" if self.profiling else ""), style="dim")
            out.append("\n   OWN  TOTAL  FUNCTION")
            for fn in reply.functions[:12]:
                out.append(f"\n  {fn.own * 100:4.0f}%  {fn.total * 100:4.0f}%  ")
                out.append_text(safe(short_path(fn.location), 100))
        if status:
            out.append(f"\n  {status}", style="dim")
        self.query_one("#profile-result", Static).update(out)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_stack()

    def _show_stack(self) -> None:
        table = self.query_one("#thread-table", DataTable)
        snap = self.observer.model.snapshot
        if snap is None or not snap.threads or table.row_count == 0:
            return
        thread = snap.threads[min(table.cursor_row, len(snap.threads) - 1)]
        out = Text("STACK of ", style="bold")
        out.append_text(safe(thread.name, 40, style="bold"))
        frames = self.stacks.get(thread.ident)
        if frames is None:
            out.append("\n  now in ")
            out.append_text(safe(short_path(thread.location), 100))
            if not self.live:
                out.append("  (a recording holds the innermost frame only)", style="dim")
        else:
            for f in reversed(frames[-12:]):  # innermost first: that is where it is now
                out.append("\n  ")
                out.append_text(safe(f"{short_path(f.file)}:{f.line} {f.function}", 120))
        self.query_one("#thread-stack", Static).update(out)
