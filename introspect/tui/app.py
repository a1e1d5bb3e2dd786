"""IntrospectApp: header, ten views in tabs, footer; fed by a live agent or a recording."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabbedContent, TabPane, Tabs

from introspect.client.errors import AgentError
from introspect.client.target import resolve_target
from introspect.errors import UserError
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot
from introspect.recording.reader import Recording
from introspect.recording.writer import Recorder
from introspect.textsafe import escape
from introspect.tui.messages import (
    ConfirmCancel,
    ConfirmExact,
    ConfirmGc,
    OpenExact,
    OpenQueue,
    OpenTask,
    WatchTarget,
)
from introspect.tui.state.connection import (
    Connecting,
    ConnectionState,
    Disconnected,
    NoTarget,
    Refused,
    TargetExited,
)
from introspect.tui.state.live import LiveSession
from introspect.tui.state.model import ObserverState
from introspect.tui.state.replay import ReplayController
from introspect.tui.state.source import DataSource
from introspect.tui.views.base import View
from introspect.tui.views.errors import ErrorsView
from introspect.tui.views.exact import ExactScreen
from introspect.tui.views.load import LoadView
from introspect.tui.views.memory import MemoryView
from introspect.tui.views.metrics import MetricsView
from introspect.tui.views.nodes import NodesView
from introspect.tui.views.queue_detail import QueueDetailScreen
from introspect.tui.views.queues import QueuesView
from introspect.tui.views.system import SystemView
from introspect.tui.views.task_detail import TaskDetailScreen
from introspect.tui.views.tasks import TasksView
from introspect.tui.views.threads import ThreadsView
from introspect.tui.views.tree import TreeView
from introspect.tui.widgets.dialogs import ConfirmScreen, help_screen
from introspect.tui.widgets.header import HeaderBar
from introspect.tui.widgets.keybar import KeyBar

# key, tab id, tab label, view class
VIEWS: list[tuple[str, str, str, type[View]]] = [
    ("1", "system", "1 System", SystemView),
    ("2", "load", "2 Load", LoadView),
    ("3", "tasks", "3 Tasks", TasksView),
    ("4", "tree", "4 Tree", TreeView),
    ("5", "queues", "5 Queues", QueuesView),
    ("6", "threads", "6 Threads", ThreadsView),
    ("7", "memory", "7 Memory", MemoryView),
    ("8", "errors", "8 Errors", ErrorsView),
    ("9", "metrics", "9 Metrics", MetricsView),
    ("0", "nodes", "0 Nodes", NodesView),
]
REPLAY_ACTIONS = {"replay_toggle", "replay_step", "replay_seek", "replay_speed"}
REPLAY_TICK = 0.1
T = TypeVar("T")


class IntrospectApp(App[None]):
    CSS_PATH = "introspect.tcss"
    TITLE = "introspect top"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        *(Binding(key, f"show_view('{tab}')", label, show=False) for key, tab, label, _ in VIEWS),
        Binding("p", "pause", "Pause"),
        Binding("space", "replay_toggle", "Play/pause", show=False),
        Binding("full_stop", "replay_step(1)", "Step"),
        Binding("comma", "replay_step(-1)", "Back", show=False),
        Binding("greater_than_sign", "replay_seek(10)", "Seek +10s", show=False),
        Binding("less_than_sign", "replay_seek(-10)", "Seek -10s", show=False),
        Binding("plus", "replay_speed(True)", "Faster", show=False),
        Binding("minus", "replay_speed(False)", "Slower", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("S", "screenshot", "Screenshot", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, *, target: str | None = None, token: str | None = None,
                 interval: float = 1.0, top_tasks: int = 100,
                 recording: Recording | None = None, replay_start: int = 0,
                 replay_playing: bool = True, replay_speed: float = 1.0,
                 record_to: str | Path | None = None, initial_view: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.interval = interval
        self.top_tasks = top_tasks
        self.model = ObserverState()
        self.connection: ConnectionState = NoTarget()
        self.display_paused = False
        self.source: DataSource | None = None
        self.target_label: str | None = None
        self.record_to = Path(record_to) if record_to else None
        self.recorder: Recorder | None = None
        self.failure: Refused | None = None  # why `introspect top TARGET` gave up, if it did
        self._exit_on_refusal = False
        self.initial_target = target
        self.initial_view = initial_view
        self.replay: ReplayController | None = None
        if recording is not None:
            self.replay = ReplayController(recording, start=replay_start,
                                           playing=replay_playing, speed=replay_speed)
        self._last_tick = time.monotonic()
        self._prefilled: View | None = None
        self.screenshot_dir = Path.cwd()

    # --- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Static(id="banner", classes="hidden")
        with TabbedContent(id="views"):
            for _key, tab, label, view in VIEWS:
                with TabPane(label, id=tab):
                    yield view(id=f"view-{tab}")
        yield KeyBar(id="keys")

    async def on_mount(self) -> None:
        if self.replay is not None:
            self.source = self.replay
            self.model = self.replay.state
            self.connection = self.replay.connection_state()
            self.target_label = f"replay of {self.replay.recording.header.target}"
            self.set_interval(REPLAY_TICK, self._replay_tick)
        elif self.initial_target:
            self.switch_target(self.initial_target, exit_on_refusal=True)
        else:
            self.initial_view = "nodes"
            self._set_banner(Text("No target given: choose a node below (Enter), or quit with "
                                  "q and run `introspect top PID`."))
        if self.initial_view:
            await self.action_show_view(self.initial_view)
        self.refresh_display()
        self.call_after_refresh(self._freeze_heap)

    def _freeze_heap(self) -> None:
        """What exists once the first screen is up (modules, widgets, styles) lives as long as
        the app: keep it out of the collector's full passes, which otherwise took 70-80 ms
        every few seconds with 100k tasks in the target (a pause on whatever key was pressed
        then). Collected first, so no garbage is frozen with it."""
        gc.collect()
        gc.freeze()

    # --- data ------------------------------------------------------------------------------
    def switch_target(self, target_text: str, exit_on_refusal: bool = False) -> None:
        """Watch another node without leaving the app; `exit_on_refusal`: the target given on
        the command line, whose first connection failing ends the app with the reason."""
        try:
            target = resolve_target(target_text)
        except UserError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        token = self.token
        if token is None and target.kind == "tcp":
            from introspect.client.targets_file import token_for

            token = token_for(target_text)
        old = self.source
        self.workers.cancel_group(self, "live")
        if isinstance(old, LiveSession):
            self.run_worker(old.close(), group="cleanup")
        self.model = ObserverState()
        self.target_label = target_text
        self._close_recorder()
        self._exit_on_refusal = exit_on_refusal
        if self.record_to is not None:
            self.recorder = Recorder(self.record_to, target=target_text, interval=self.interval,
                                     top_tasks=self.top_tasks, recorder="introspect top")
        self.source = LiveSession(target, target_text, token=token, interval=self.interval,
                                  top_tasks=self.top_tasks, on_snapshot=self.on_snapshot,
                                  on_state=self.on_connection, on_history=self.on_history)
        self.run_worker(self.source.run(), group="live", exclusive=True, exit_on_error=False)
        self._set_banner(None)
        self.refresh_display()

    def on_snapshot(self, snapshot: Snapshot, update: m.Update) -> None:
        self.model.observe(snapshot, update.seq, update.dropped)
        if self.recorder is not None:
            self._record(self.recorder.write, update)
        if not self.display_paused:
            self.refresh_display()

    def on_history(self, samples: list[m.HistorySample]) -> None:
        seeded = self.model.seed_history(samples)
        if not seeded:
            return
        if self.recorder is not None:
            # What the charts took, where it arrived in the stream: a replay seeds it there.
            self._record(self.recorder.write_history, seeded)
        if not self.display_paused:
            self.refresh_display()

    def _record(self, write: Callable[[T], object], item: T) -> None:
        try:
            write(item)
        except UserError as exc:
            self.recorder = None
            self.notify(f"recording stopped: {exc}", severity="error", markup=False)

    def _close_recorder(self, reason: str = "closed") -> None:
        if self.recorder is not None:
            self.recorder.close(reason)
            self.recorder = None

    def on_connection(self, state: ConnectionState) -> None:
        self.connection = state
        if isinstance(state, Disconnected):
            self._set_banner(Text(f"Disconnected from {escape(state.target, 80)}: "
                                  f"{escape(state.reason, 200)}. Reconnecting (attempt "
                                  f"{state.attempt}) in {state.retry_in:.1f}s…"))
        elif isinstance(state, TargetExited):
            self._set_banner(Text(f"The target {escape(state.target, 80)} has exited "
                                  f"(pid {state.pid}). The last data stays on screen; press "
                                  "0 to pick another node, q to quit."))
            self._close_recorder("target-exited")
        elif isinstance(state, Refused):
            self._close_recorder("refused")
            if state.first_connection and self._exit_on_refusal:
                self.failure = state
                self.exit(return_code=state.exit_code)
                return
            self._set_banner(Text(f"Stopped watching {escape(state.target, 80)}: "
                                  f"{escape(state.reason, 200)}. Not retrying; press 0 to "
                                  "pick another node, q to quit."))
        elif not isinstance(state, Connecting):
            self._set_banner(None)
        self.query_one(HeaderBar).show(self.model, self.connection, self.display_paused)

    def _set_banner(self, text: Text | None) -> None:
        banner = self.query_one("#banner", Static)
        if text is None:
            banner.add_class("hidden")
        else:
            banner.update(text)
            banner.remove_class("hidden")

    def refresh_display(self) -> None:
        self.query_one(HeaderBar).show(self.model, self.connection, self.display_paused)
        view = self.active_view()
        if view is not None and self.model.snapshot is not None:
            view.show(self.model)

    def active_view(self) -> View | None:
        active = self.query_one("#views", TabbedContent).active
        if not active:
            return None
        return self.query_one(f"#view-{active}", View)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        view = self.active_view()
        prefilled, self._prefilled = self._prefilled, None
        if view is not None and self.model.snapshot is not None and view is not prefilled:
            view.show(self.model)
        if isinstance(view, NodesView):
            view.action_reload()
        if view is not None and (self.focused is None or isinstance(self.focused, Tabs)):
            self._focus_view(view)

    # --- replay ----------------------------------------------------------------------------
    def _replay_tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self.replay is not None and self.replay.tick(elapsed):
            self._replay_moved()
        elif self.replay is not None:
            self.connection = self.replay.connection_state()

    def _replay_moved(self) -> None:
        assert self.replay is not None
        self.model = self.replay.state
        self.connection = self.replay.connection_state()
        self.refresh_display()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REPLAY_ACTIONS:
            return self.replay is not None
        return True

    def action_replay_toggle(self) -> None:
        if self.replay is not None:
            self.replay.toggle()
            self._last_tick = time.monotonic()
            self._replay_moved()

    def action_replay_step(self, delta: int) -> None:
        if self.replay is not None:
            self.replay.step(delta)
            self._replay_moved()

    def action_replay_seek(self, seconds: float) -> None:
        if self.replay is not None:
            self.replay.seek_seconds(seconds)
            self._replay_moved()

    def action_replay_speed(self, faster: bool) -> None:
        if self.replay is not None:
            self.replay.change_speed(faster)
            self._replay_moved()

    # --- actions ---------------------------------------------------------------------------
    async def action_show_view(self, tab: str) -> None:
        tabs = self.query_one("#views", TabbedContent)
        view = self.query_one(f"#view-{tab}", View)
        if tabs.active != tab and self.model.snapshot is not None:
            # Hidden views are not kept up to date: fill this one before it is painted, so
            # the switch paints once, with current data (TabActivated then skips it).
            await view.prepare(self.model)
            self._prefilled = view
        tabs.active = tab
        self._focus_view(view)

    def _focus_view(self, view: View) -> None:
        """Into the view, so its keys work at once (`G` on Memory, `f` on Threads), however
        the tab was chosen."""
        # A plain scrolled page (Load, System) takes focus only if it has keys of its own: a
        # focus change restyles the screen, which costs the tab switch a repaint.
        selector = "RowTable, DataTable, Tree" + (", VerticalScroll" if view.BINDINGS else "")
        focusable = view.query(selector)
        if focusable:
            focusable.first().focus()

    def action_screenshot(self) -> None:
        """`S`: the screen as an SVG file in the current directory (`screenshot_dir`)."""
        try:
            path = self.save_screenshot(path=str(self.screenshot_dir))
        except OSError as exc:
            self.notify(f"screenshot not saved: {escape(str(exc), 200)}", severity="error",
                        markup=False)
            return
        self.notify(f"screenshot saved to {escape(path, 300)}", markup=False, timeout=8)

    def control_refused(self, what: str) -> bool:
        """True (and says so) when `what` cannot be done: no live target, or a read-only
        connection. Said before any question is asked: asking "Cancel?" and refusing after
        "yes" wastes the operator's time."""
        if not self._live_or_say(what):
            return True
        role = getattr(self.source, "role", None)
        if role == "read":
            self.notify(f"read-only: {what} needs a control token (this connection has the "
                        "read role)", severity="error", markup=False, timeout=8)
            return True
        return False

    def action_pause(self) -> None:
        if self.replay is not None:
            self.action_replay_toggle()
            return
        self.display_paused = not self.display_paused
        self.refresh_display()

    def action_help(self) -> None:
        self.push_screen(help_screen())

    # --- what views ask (introspect.tui.messages) --------------------------------------------
    def on_open_task(self, message: OpenTask) -> None:
        self.push_screen(TaskDetailScreen(message.task_id))

    def on_open_queue(self, message: OpenQueue) -> None:
        self.push_screen(QueueDetailScreen(message.key))

    def on_watch_target(self, message: WatchTarget) -> None:
        self.switch_target(message.target)

    def on_confirm_cancel(self, message: ConfirmCancel) -> None:
        if self.control_refused("cancelling a task"):
            return
        task_id = message.task_id
        question = Text(f"Cancel task #{task_id} ")
        question.append(escape(message.name, 60), style="bold")
        question.append(" in the target? This calls task.cancel() in the running service.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._do(lambda s: s.cancel(task_id)), group="actions")

        self.push_screen(ConfirmScreen(question), answered)

    def on_confirm_gc(self, message: ConfirmGc) -> None:
        if self.control_refused("a forced GC"):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._do(lambda s: s.gc_collect()), group="actions")

        self.push_screen(ConfirmScreen(Text("Run a full gc.collect() in the target? It pauses "
                                            "the target while it runs.")), answered)

    def _live_or_say(self, what: str) -> bool:
        if self.source is not None and self.source.live:
            return True
        self.notify(f"{what} needs a live target" + (": this is a recording"
                    if self.replay is not None else ": no target is being watched"),
                    severity="error", markup=False)
        return False

    def on_confirm_exact(self, message: ConfirmExact) -> None:
        """Ask, then start exact accounting for `seconds` and open its page."""
        seconds = message.seconds
        if self.control_refused("exact accounting"):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._start_exact(seconds), group="actions",
                                exit_on_error=False)

        self.push_screen(ConfirmScreen(Text(
            f"Time every step of every task for {seconds:g} s? Costs the target's loop a few "
            "percent while it runs.")), answered)

    async def _start_exact(self, seconds: float) -> None:
        source = self.source
        if source is None:
            return
        try:
            await source.exact_accounting(seconds)
        except AgentError as exc:
            why = " (exact accounting needs the control role)" if exc.code == "forbidden" else ""
            self.notify(f"exact accounting refused: {escape(str(exc), 300)}{why}",
                        severity="error", markup=False, timeout=10)
            return
        except UserError as exc:
            self.notify(f"exact accounting: {escape(str(exc), 300)}", severity="error",
                        markup=False, timeout=10)
            return
        self.push_screen(ExactScreen(seconds))

    def on_open_exact(self, message: OpenExact) -> None:
        """The latest exact accounting report (running or finished), starting nothing."""
        if self._live_or_say("the exact accounting report"):
            self.push_screen(ExactScreen())

    async def _do(self, action: Any) -> None:
        if self.source is None:
            return
        try:
            detail = await action(self.source)
        except UserError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(escape(detail, 200), markup=False)

    async def action_quit(self) -> None:
        self._close_recorder()
        if self.source is not None:
            await self.source.close()
        self.exit()
