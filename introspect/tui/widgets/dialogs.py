"""Small modal screens: confirmation, help, and a scrollable text page (tracebacks, events)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no for actions that change the target (cancel a task, force a GC)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "answer(False)", "No")]

    def __init__(self, question: Text) -> None:
        super().__init__(id="confirm")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TextScreen(ModalScreen[None]):
    """A full page of text (traceback, event detail, help); Esc or q closes it."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close")]

    def __init__(self, title: str, body: Text, screen_id: str = "text-page") -> None:
        super().__init__(id=screen_id)
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="page"):
            yield Static(Text(self.title_text, style="bold"), classes="page-title")
            with VerticalScroll():
                yield Static(self.body, classes="page-body")
            yield Static("Esc: close", classes="page-hint")

    def action_close(self) -> None:
        self.dismiss(None)


HELP = """\
Views      1 System  2 Load  3 Tasks  4 Tree  5 Queues  6 Threads  7 Memory & GC
           8 Errors & events  9 Metrics  0 Nodes      (or click the tabs; Tab moves focus)
Anywhere   p pause the display (the agent keeps going)   ? this help   q quit
           S save an SVG screenshot of the screen (to the current directory)
Tasks      / filter (name, kind, location)   s next sort column   r reverse order
           HELD = wall time the task held the loop (blocking calls included); BUSY = CPU
           click a column header to sort by it   n / N next / previous page
           g group by kind (Enter on a kind filters to it)   Enter task detail   c cancel task
           x exact accounting for 30 s (asks first)   X the latest exact report
Task page  c cancel (asks first)   r refresh   Esc back
Tree       Enter / Space expand or collapse   r reload
Threads    f profile the target with py-spy, 3 s at a time, until f again (control role)
Errors     identical errors are one row (COUNT, LAST, FIRST seen)
           Enter the full traceback / the event's card (stack innermost last)
Memory     G force a full GC collection in the target (asks first)
Nodes      Enter switch to that node   r reload the list
Replay     p or Space play/pause   . / , step forward/back   > / < seek ±10 s   + / - speed
"""


def help_screen() -> TextScreen:
    return TextScreen("introspect top: keys", Text(HELP), screen_id="help")
