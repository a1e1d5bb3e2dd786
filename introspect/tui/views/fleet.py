"""The Fleet screen of `introspect top --prometheus URL`: every instance Prometheus knows, worst
first (introspect/fleet/ranking.py), refreshed on a visible interval, and only while shown.
Enter attaches to the instance's agent when one is reachable, else opens its metrics page."""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from introspect.errors import UserError
from introspect.fleet.ranking import Instance
from introspect.fleet.reach import find_agent, how_to_reach
from introspect.fleet.refresh import FleetReport, FleetSource
from introspect.fleet.render import COLUMNS, row_cells
from introspect.textsafe import escape
from introspect.tui.widgets.text import theme_color

DEFAULT_REFRESH = 10.0  # seconds between refreshes: ~11 small queries each


class FleetScreen(Screen[None]):
    DEFAULT_CSS = """
    FleetScreen #fleet-filter {
        height: 3;
    }
    """
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh now"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "back", "Back to the agent"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, source: FleetSource, refresh: float = DEFAULT_REFRESH) -> None:
        super().__init__(id="fleet")
        self.source = source
        self.refresh_every = refresh
        self.report: FleetReport | None = None
        self.shown: list[Instance] = []  # the rows on screen (the report, filtered)
        self.filter_text = ""
        self.error: str | None = None
        self.in_flight = False
        self.next_at = 0.0  # monotonic time of the next refresh

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title", classes="status")
        yield Input(placeholder="filter: text in job/instance/pid or an alert name; Enter "
                    "applies, Esc clears", id="fleet-filter", classes="hidden")
        yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="fleet-keys", classes="status")

    def on_mount(self) -> None:
        self.query_one("#fleet-table", DataTable).add_columns("#", *COLUMNS)
        self.query_one("#fleet-keys", Static).update(Text(
            "Enter: attach (or metrics page)  /: filter  r: refresh  Esc: back to the agent"
            "  f: fleet  q: quit"))
        self.set_interval(1.0, self._tick)
        self.action_refresh_now()

    def on_screen_resume(self) -> None:
        if time.monotonic() >= self.next_at:
            self.action_refresh_now()
        self.query_one("#fleet-table", DataTable).focus()

    # --- refreshing ------------------------------------------------------------------------
    def _tick(self) -> None:
        if not self.is_current:
            return  # hidden behind an attached agent: no queries
        if time.monotonic() >= self.next_at and not self.in_flight:
            self.action_refresh_now()
        else:
            self._show_status()

    def action_refresh_now(self) -> None:
        if self.in_flight:
            return
        self.in_flight = True
        self._show_status()
        self.run_worker(self._refresh(), group="fleet", exclusive=True, exit_on_error=False)

    async def _refresh(self) -> None:
        try:
            report = await asyncio.to_thread(self.source.refresh)
        except UserError as exc:
            self.error = str(exc)
        except Exception as exc:  # contained: the screen keeps its last rows and retries
            self.error = f"fleet refresh failed: {type(exc).__name__}: {exc}"
        else:
            self.error = None
            self.report = report
            self._fill(report)
        finally:
            self.in_flight = False
            self.next_at = time.monotonic() + self.refresh_every
        self._show_status()

    def _matches(self, inst: Instance) -> bool:
        needle = self.filter_text.lower()
        return not needle or needle in inst.label.lower() or any(
            needle in a.name.lower() for a in inst.alerts)

    def _fill(self, report: FleetReport) -> None:
        table = self.query_one("#fleet-table", DataTable)
        selected = self._selected()
        table.clear()
        bad = theme_color(self, "error", "red")
        warn = theme_color(self, "warning", "yellow")
        self.shown = []
        for rank, inst in enumerate(report.instances, 1):
            if not self._matches(inst):
                continue
            # Plain strings where no style is needed (a Text per cell tripled the fill time),
            # but DataTable reads a str as markup: anything with "[" (an IPv6 instance, a
            # label from Prometheus) stays Text.
            cells: list[str | Text] = [c if "[" not in c else Text(c)
                                       for c in (str(rank), *row_cells(inst))]
            if inst.up is False:
                cells[3] = Text(str(cells[3]), style=f"bold {bad}")
            if any(a.state == "firing" for a in inst.alerts):
                cells[4] = Text(str(cells[4]), style=warn)  # the ALERTS column
            table.add_row(*cells, key=str(len(self.shown)))
            self.shown.append(inst)
        if selected is not None:
            for i, inst in enumerate(self.shown):
                if inst.key == selected.key:
                    table.move_cursor(row=i)
                    break

    def _show_status(self) -> None:
        report = self.report
        line = Text()
        if report is None:
            line.append(f"asking {escape(self.source.api.url, 80)}…")
        else:
            down = sum(1 for i in report.instances if i.up is False)
            firing = sum(1 for i in report.instances for a in i.alerts if a.state == "firing")
            where = escape(report.url, 60) + (f" {{{escape(report.selector, 60)}}}"
                                              if report.selector else "")
            line.append(f"Fleet: {len(report.instances)} instances from {where}  ",
                        style="bold")
            line.append(f"{down} down  {firing} firing")
            if self.filter_text:
                line.append(f"  filter {escape(self.filter_text, 40)!r}: "
                            f"{len(self.shown)} shown", style="bold")
            stamp = time.strftime("%H:%M:%S", time.localtime(report.evaluated_at))
            wait = max(0.0, self.next_at - time.monotonic())
            state = "refreshing…" if self.in_flight else f"next in {wait:.0f}s"
            line.append(f"\nrefresh every {self.refresh_every:g}s · last {stamp} "
                        f"({report.requests} requests, {report.seconds * 1000:.0f} ms) · {state}")
            for note in report.notes:
                line.append(f"\n{escape(note, 200)}")
        if self.error:
            line.append(f"\n{escape(self.error, 300)}", style=theme_color(self, "error", "red"))
        self.query_one("#fleet-title", Static).update(line)

    # --- actions ---------------------------------------------------------------------------
    def _selected(self) -> Instance | None:
        row = self.query_one("#fleet-table", DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(event.row_key.value or 0)
        if index < len(self.shown):
            self.run_worker(self._open(self.shown[index]), group="fleet-open",
                            exclusive=True, exit_on_error=False)

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.remove_class("hidden")
        box.value = self.filter_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._apply_filter(event.value.strip())

    def _apply_filter(self, text: str) -> None:
        self.filter_text = text
        box = self.query_one("#fleet-filter", Input)
        box.set_class(not text, "hidden")
        self.query_one("#fleet-table", DataTable).focus()
        if self.report is not None:
            self._fill(self.report)
        self._show_status()

    async def _open(self, inst: Instance) -> None:
        reach = await asyncio.to_thread(find_agent, inst.job, inst.instance, inst.pid)
        if reach.target is not None:
            self.notify(f"attaching to {escape(inst.label, 80)} ({reach.via} "
                        f"{escape(reach.target, 60)})", markup=False)
            await self.app.attach_from_fleet(reach.target)  # type: ignore[attr-defined]
            return
        from introspect.tui.views.fleet_instance import FleetInstanceScreen

        self.app.push_screen(FleetInstanceScreen(self.source.api, inst,
                                                 how_to_reach(inst.job, inst.instance)))

    def action_back(self) -> None:
        if self.query_one("#fleet-filter", Input).has_focus:
            self._apply_filter("")  # Esc in the filter box clears it
            return
        if getattr(self.app, "source", None) is None:
            self.notify("no agent attached yet: Enter on an instance attaches to it",
                        markup=False)
            return
        self.app.pop_screen()
