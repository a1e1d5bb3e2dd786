"""`introspect top --prometheus URL`: the usual app, opened on the Fleet screen. Enter on an
instance attaches to its agent and shows its Tasks view; `f` comes back to the fleet."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from introspect.fleet.refresh import FleetSource
from introspect.tui.app import IntrospectApp
from introspect.tui.views.fleet import DEFAULT_REFRESH, FleetScreen


class FleetApp(IntrospectApp):
    TITLE = "introspect top (fleet)"
    BINDINGS = [Binding("f", "fleet", "Fleet")]  # added to IntrospectApp's

    def __init__(self, fleet: FleetSource, refresh: float = DEFAULT_REFRESH,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet
        self.fleet_refresh = refresh

    def on_mount(self) -> None:
        # IntrospectApp.on_mount runs too (Textual calls each class's handler): it shows the
        # Nodes view under the fleet. Our screen goes on top once that is done.
        self.install_screen(FleetScreen(self.fleet, self.fleet_refresh), name="fleet")
        self.call_later(self.action_fleet)

    def action_fleet(self) -> None:
        if self.screen.id != "fleet":
            self.push_screen("fleet")

    async def attach_from_fleet(self, target: str) -> None:
        """Leave the fleet for this agent's Tasks view (`f` returns)."""
        while self.screen.id != "fleet" and len(self.screen_stack) > 1:
            self.pop_screen()
        if self.screen.id == "fleet":
            self.pop_screen()
        self.switch_target(target)
        await self.action_show_view("tasks")
        self.notify("f: back to the fleet", markup=False)

    def _set_banner(self, text: Text | None) -> None:
        if text is not None and text.plain.startswith("No target given"):
            text = Text("No agent attached: press f for the fleet and Enter on an instance.")
        super()._set_banner(text)

    async def action_quit(self) -> None:
        self.fleet.close()
        await super().action_quit()
