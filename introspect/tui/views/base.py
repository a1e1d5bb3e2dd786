"""What every view shares: a hook called with the model when the display refreshes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import Vertical

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
