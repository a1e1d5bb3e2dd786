"""The TUI's own light widgets on their own: RowTable (the tasks table), KeyBar (the footer
line), OneLineSparkline (the Load charts). What the views rely on, checked against what is
on screen."""

from __future__ import annotations

import random
from typing import Any

import pytest
from rich.color import Color
from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.renderables.sparkline import Sparkline as SparklineRenderable

from introspect.tui.widgets.keybar import KeyBar
from introspect.tui.widgets.sparkline import chart_segments
from introspect.tui.widgets.table import RowTable
from tests.tui.support import poll, run, screen_text

COLUMNS = [("id", "ID"), ("name", "NAME"), ("state", "STATE")]


def rows(*names: str) -> list[tuple[str, tuple[Any, ...]]]:
    return [(name, (str(i), Text(name), "waiting")) for i, name in enumerate(names)]


class TableApp(App[None]):
    BINDINGS = [Binding("x", "mark", "Mark it")]

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.marked = 0

    def compose(self) -> ComposeResult:
        yield RowTable(id="table")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        table = self.query_one(RowTable)
        table.set_columns(COLUMNS)
        table.focus()

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        self.events.append(("selected", event.row_key))

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self.events.append(("highlighted", event.row_key))

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        self.events.append(("header", event.column_key))

    def action_mark(self) -> None:
        self.marked += 1


def table_lines(app: App[Any]) -> list[str]:
    """The table's rows as shown (header first), without trailing blanks."""
    return [line.rstrip() for line in screen_text(app).splitlines()[:-1] if line.strip()]


def test_rows_replaced_in_place_show_new_and_removed_rows() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(60, 12)) as pilot:
            table = app.query_one(RowTable)
            table.set_rows(rows("alpha", "beta", "gamma", "delta"))
            await poll(pilot, lambda: len(table_lines(app)) == 5, "four rows and the header")
            lines = table_lines(app)
            assert lines[0].split() == ["ID", "NAME", "STATE"]
            assert [ln.split()[1] for ln in lines[1:]] == ["alpha", "beta", "gamma", "delta"]

            table.move_cursor(row=2)
            app.events.clear()
            # beta and gamma gone, epsilon new, another order, one wider name
            table.set_rows(rows("delta", "alpha", "epsilon-with-a-long-name"))
            await poll(pilot, lambda: len(table_lines(app)) == 4, "three rows")
            lines = table_lines(app)
            assert [ln.split()[1] for ln in lines[1:]] == ["delta", "alpha",
                                                           "epsilon-with-a-long-name"]
            assert "beta" not in screen_text(app) and "gamma" not in screen_text(app)
            # the cursor keeps its index; another row under it is reported as highlighted
            assert table.cursor_row == 2 and table.cursor_key == "epsilon-with-a-long-name"
            await poll(pilot, lambda: ("highlighted", "epsilon-with-a-long-name")
                       in app.events, "highlight of the row now under the cursor")

            table.set_rows(rows(*(f"many-{i}" for i in range(30))))
            table.move_cursor(row=0)
            table.scroll_y = table.max_scroll_y  # scrolled away from the cursor, to the end
            await poll(pilot, lambda: "many-29" in screen_text(app), "the end of 30 rows")
            table.set_rows(rows("first", "second"))  # the scroll position follows
            await poll(pilot, lambda: len(table_lines(app)) == 3, "the two rows on screen")

            table.move_cursor(row=1)
            table.set_rows(rows("solo"))  # fewer rows than the cursor index: clamped
            await poll(pilot, lambda: len(table_lines(app)) == 2, "one row")
            assert table.cursor_row == 0 and table.row_keys == ["solo"]
            table.set_rows([])
            await poll(pilot, lambda: len(table_lines(app)) == 1, "only the header")
            assert table.cursor_key is None

    run(scenario())


def test_keys_and_clicks() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(60, 12)) as pilot:
            table = app.query_one(RowTable)
            table.set_rows(rows(*(f"task-{i}" for i in range(30))))
            await pilot.pause()
            await pilot.press("down", "down", "enter")
            await poll(pilot, lambda: ("selected", "task-2") in app.events, "Enter selects")
            await pilot.press("pagedown")
            assert table.cursor_row > 2
            await poll(pilot, lambda: f"task-{table.cursor_row}" in screen_text(app),
                       "the cursor row scrolled into view")
            await pilot.press("ctrl+end")
            await poll(pilot, lambda: "task-29" in screen_text(app), "the last row shown")
            await pilot.press("ctrl+home")
            await poll(pilot, lambda: "task-0 " in screen_text(app), "the first row shown")
            assert table.cursor_row == 0

            await pilot.click(RowTable, offset=(8, 0))  # the NAME header (ID is 4 wide)
            await poll(pilot, lambda: ("header", "name") in app.events, "header click")
            await pilot.click(RowTable, offset=(8, 4))  # the 4th row: moves the cursor
            await poll(pilot, lambda: table.cursor_row == 3, "click moves the cursor")
            assert ("selected", "task-3") not in app.events
            await pilot.click(RowTable, offset=(8, 4))  # again: selects it
            await poll(pilot, lambda: ("selected", "task-3") in app.events, "click selects")

    run(scenario())


def test_wide_rows_scroll_sideways() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(30, 8)) as pilot:
            table = app.query_one(RowTable)
            table.set_rows([("k", ("1", Text("n" * 40), "waiting-at-the-end"))])
            await poll(pilot, lambda: "nnnn" in screen_text(app), "the row")
            assert "waiting-at-the-end" not in screen_text(app)
            await pilot.press("end")
            await poll(pilot, lambda: "waiting-at-the-end" in screen_text(app),
                       "the last column after scrolling right")
            await pilot.press("home")
            await poll(pilot, lambda: " ID " in screen_text(app), "back to the first column")

    run(scenario())


def test_key_bar_shows_the_keys_and_a_click_presses_one() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(60, 12)) as pilot:
            line = await poll(pilot, lambda: "Mark it" in screen_text(app) and
                              screen_text(app).splitlines()[-1], "the key bar")
            assert line.startswith(" x Mark it")  # like Footer: " key " + "description "
            await pilot.click(KeyBar, offset=(3, 0))
            await poll(pilot, lambda: app.marked == 1, "the click ran the binding")

    run(scenario())


@pytest.mark.parametrize("count", [0, 1, 2, 5, 117, 118, 119, 300])
@pytest.mark.parametrize("width", [1, 7, 60, 118])
def test_one_line_sparkline_draws_what_sparkline_draws(count: int, width: int) -> None:
    low, high = Color.from_rgb(10, 50, 90), Color.from_rgb(200, 30, 20)
    rng = random.Random(count * 1000 + width)
    data = [rng.random() * 100 for _ in range(count)]
    console = Console(width=200)
    expected = SparklineRenderable(data, width=width, height=1, min_color=low, max_color=high)
    cells = [(ch, s.style) for s in expected.__rich_console__(console, console.options)
             for ch in s.text]
    assert [(ch, s.style) for s in chart_segments(data, width, low, high)
            for ch in s.text] == cells
