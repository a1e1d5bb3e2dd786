"""One instance from the Fleet screen, from PromQL only (no agent reachable): tasks by kind,
crashes, queues, loop lag, GC, memory, exceptions, its alerts, and how to reach its agent."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from introspect.errors import UserError
from introspect.fleet.api import PrometheusAPI
from introspect.fleet.detail import InstanceDetail, fetch_detail, instance_selector
from introspect.fleet.ranking import Instance
from introspect.fleet.render import alert_text, count, seconds, size
from introspect.textsafe import escape


class FleetInstanceScreen(Screen[None]):
    BINDINGS = [Binding("escape", "close", "Back to the fleet"), Binding("r", "reload", "Reload"),
                Binding("q", "close", "Back")]

    def __init__(self, api: PrometheusAPI, inst: Instance, reach_hint: str) -> None:
        super().__init__(id="fleet-instance")
        self.api = api
        self.inst = inst
        self.reach_hint = reach_hint
        self.selector = instance_selector(inst.job, inst.instance, inst.pid, inst.worker)

    def compose(self) -> ComposeResult:
        with Vertical(classes="page"):
            yield Static(Text(f"{self.inst.label}: metrics from Prometheus (no agent attached)",
                              style="bold"), classes="page-title")
            with VerticalScroll():
                yield Static(Text("asking Prometheus…"), id="fleet-instance-body",
                             classes="page-body")
            yield Static("Esc: back to the fleet   r: reload", classes="page-hint")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.run_worker(self._load(), group="fleet-instance", exclusive=True,
                        exit_on_error=False)

    async def _load(self) -> None:
        body = self.query_one("#fleet-instance-body", Static)
        try:
            detail = await asyncio.to_thread(fetch_detail, self.api, self.selector)
        except UserError as exc:
            body.update(Text(str(exc)))
            return
        body.update(self.render_detail(detail))

    def render_detail(self, d: InstanceDetail) -> Text:
        v = d.values
        out = Text()
        up = {1.0: "up", 0.0: "DOWN"}.get(v.get("up") or 0.0, "?") if v.get("up") is not None \
            else "not scraped"
        out.append(f"scrape: {up}" + (f" ({escape(self.inst.scrape_error, 200)})"
                                      if self.inst.scrape_error else "") + "\n")
        if self.inst.alerts:
            out.append("alerts: " + alert_text(self.inst.alerts, 300) + "\n", style="bold")
        out.append(f"\nEVENT LOOP  lag p50 {seconds(v.get('lag_p50'))}  p99 "
                   f"{seconds(v.get('lag_p99'))}  blocked {seconds(v.get('blocked'))} per 5m  "
                   f"ready handles {count(v.get('ready'))}\n", style="bold")
        growth = v.get("memory_growth")
        out.append(f"MEMORY      RSS {size(v.get('rss'))}  growth "
                   f"{'-' if growth is None else f'{growth:+.1%}/h'}  threads "
                   f"{count(v.get('threads'))}  open fds {count(v.get('fds'))}\n", style="bold")
        pause = v.get("gc_pause")
        gcs = ", ".join(f"gen{g} {n:.1f}/min" for g, n in d.rows.get("gc_collections", []))
        out.append(f"GC          {gcs or '-'}  paused "
                   f"{'-' if pause is None else f'{pause:.2%}'} of the time\n", style="bold")
        sections = [("TASKS BY KIND (live)", "tasks", "{:.0f}"),
                    ("CRASHES BY KIND (per 15m)", "crashes", "{:.1f}"),
                    ("QUEUES (items)", "queues", "{:.0f}"),
                    ("QUEUE GROWTH (items per 10m)", "queue_growth", "{:+.0f}"),
                    ("EXECUTORS (waiting)", "executors", "{:.0f}"),
                    ("UNHANDLED EXCEPTIONS (last 10m)", "exceptions", "{:.0f}")]
        for title, name, fmt in sections:
            rows = d.rows.get(name, [])
            out.append(f"\n{title}\n", style="bold")
            if not rows:
                out.append("  none\n")
            for key, value in rows:
                out.append(f"  {fmt.format(value):>8}  {escape(key, 100)}\n")
        out.append(f"\n{self.reach_hint}\n")
        return out

    def action_close(self) -> None:
        self.app.pop_screen()
