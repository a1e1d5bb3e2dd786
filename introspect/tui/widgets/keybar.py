"""KeyBar: the keys that work here (the focused view's and the app's), one line at the bottom.

It shows what Textual's `Footer` shows (bindings with `show=True`, one per action, disabled
ones dimmed, a click presses the key), drawn as one line of segments. `Footer` re-mounts one
widget per key whenever the focus changes, inside a batch that holds back every screen
update until the mounting is done: 25–90 ms after each tab switch with 100k tasks on a
2-core VM, during which nothing else reached the screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    from textual.screen import Screen


class KeyBar(Widget):
    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key", "key-bar--description"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys: list[tuple[Binding, bool]] = []
        self._line: tuple[object, Strip] | None = None  # (what it was drawn from, the line)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        keys: list[tuple[Binding, bool]] = []
        actions: set[str] = set()
        for _node, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in actions:
                actions.add(binding.action)
                keys.append((binding, enabled))
        if keys != self.keys:
            self.keys = keys
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """The one line, drawn straight to segments and kept until the keys, the styles or
        the width change (no Rich text layout on every focus change)."""
        width = self.size.width
        base = self.rich_style
        key_style = base + self.get_component_rich_style("key-bar--key", partial=True)
        description_style = base + self.get_component_rich_style("key-bar--description",
                                                                 partial=True)
        state = (tuple(self.keys), width, base, key_style, description_style)
        if y != 0:
            return Strip.blank(width, base)
        if self._line is None or self._line[0] != state:
            segments: list[Segment] = []
            dim = Style(dim=True)
            for binding, enabled in self.keys:
                click = Style.from_meta({"@click": f"app.simulate_key({binding.key!r})"})
                extra = click if enabled else dim + click
                segments.append(Segment(f" {self.app.get_key_display(binding)} ",
                                        key_style + extra))
                segments.append(Segment(f"{binding.description} ", description_style + extra))
            self._line = (state, Strip(segments).crop_extend(0, width, base))
        return self._line[1]
