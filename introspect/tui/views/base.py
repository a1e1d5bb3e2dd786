"""What every view shares: a hook called with the model when the display refreshes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from introspect.tui.state.model import ObserverState

if TYPE_CHECKING:
    from introspect.tui.app import IntrospectApp


class View(Vertical):
    """A screen area for one tab. `show()` must be cheap: it runs on every displayed update
    of the active tab."""

    @property
    def observer(self) -> IntrospectApp:
        return self.app  # type: ignore[return-value]

    @property
    def source(self) -> Any:
        return self.observer.source

    def show(self, model: ObserverState) -> None:  # pragma: no cover - overridden
        pass

    async def prepare(self, model: ObserverState) -> None:
        """Called just before this view's tab is shown (hidden views are not kept up to
        date): fill it, so the switch paints once, with current data."""
        self.show(model)


def update_line(widget: Static, text: Text) -> None:
    """`Static.update` for a status line, without a screen-wide relayout when the line still
    fits on one line (the widget keeps its height). `Static.update` lays out the whole screen
    on every call (it cannot know the size stays): a full repaint per 1 s update."""
    width = widget.content_region.width
    one_line = "\n" not in text.plain and 0 < cell_len(text.plain) <= width
    was_one_line = getattr(widget, "_one_line", False)
    widget._one_line = one_line  # type: ignore[attr-defined]
    widget.update(text, layout=not (one_line and was_one_line))
