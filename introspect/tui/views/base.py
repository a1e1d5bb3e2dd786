"""What every view shares: a hook called with the model when the display refreshes, and the
data source it may ask for more (`DataSource`); what it wants of the app, it posts as a message
(`introspect.tui.messages`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.cells import cell_len
from rich.text import Text
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.widgets import Static

from introspect.tui.state.model import ObserverState
from introspect.tui.state.source import DataSource

if TYPE_CHECKING:
    from introspect.tui.app import IntrospectApp


class View(Vertical):
    """A screen area for one tab. `show()` must be cheap: it runs on every displayed update
    of the active tab."""

    @property
    def observer(self) -> IntrospectApp:
        """The app, for what it shows (`model`, `target_label`); requests go to `source`."""
        return cast("IntrospectApp", self.app)

    @property
    def source(self) -> DataSource | None:
        return source_of(self)

    @property
    def live(self) -> bool:
        """Watching an agent (not a recording, not nothing): control actions can work."""
        source = self.source
        return source is not None and source.live

    def show(self, model: ObserverState) -> None:  # pragma: no cover - overridden
        pass

    async def prepare(self, model: ObserverState) -> None:
        """Called just before this view's tab is shown (hidden views are not kept up to
        date): fill it, so the switch paints once, with current data."""
        self.show(model)


def source_of(node: DOMNode) -> DataSource | None:
    """The app's data source, for screens that are not views (task page, exact page)."""
    return cast("DataSource | None", getattr(node.app, "source", None))


def update_line(widget: Static, text: Text) -> None:
    """`Static.update` for a status line, without a screen-wide relayout when the line still
    fits on one line (the widget keeps its height). `Static.update` lays out the whole screen
    on every call (it cannot know the size stays): a full repaint per 1 s update."""
    width = widget.content_region.width
    one_line = "\n" not in text.plain and 0 < cell_len(text.plain) <= width
    was_one_line = getattr(widget, "_one_line", False)
    widget._one_line = one_line  # type: ignore[attr-defined]
    widget.update(text, layout=not (one_line and was_one_line))
