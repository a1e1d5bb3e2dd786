"""RowTable: a read-only, row-cursor table drawn line by line (Textual's Line API).

Why not `DataTable`: its render caches are keyed on one table-wide update counter, so changing
any cell (task ages change on every 1 s update) re-renders every visible cell through Rich
(`Padding` + `Styled` + `render_lines`, ~0.2 ms a cell on a 2-core VM: ~65 ms for a 120×40
tasks screen), and `clear()` + `add_row` re-measures every cell on idle (~25 ms more). Here
a row is drawn straight to segments only when it is on screen, and kept until its content,
the cursor or the styles change: a whole screen costs a few milliseconds.

What the views used from `DataTable` is kept: a header (click a column to get
`HeaderSelected`), a row cursor (up/down/page up/page down/ctrl+home/ctrl+end, mouse click),
`RowSelected` on Enter or on a click on the cursor row, `RowHighlighted` when the cursor
moves, mouse hover highlight, horizontal and vertical scrolling, and auto-sized columns that
grow with their content (never shrink, like `DataTable`'s). Cells are `rich.text.Text` (the
views escape everything from the target through `fmt.safe`) or plain `str` (shown as is,
never parsed as markup).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = Text | str
PAD = 1  # blank cells each side of a column, as DataTable's cell_padding=1


@dataclass
class Column:
    key: str
    label: str
    content_width: int = 0  # grows with the widest cell seen (label included)

    @property
    def width(self) -> int:
        return self.content_width + 2 * PAD


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[Cell, ...]


class RowTable(ScrollView, can_focus=True):
    """A table of single-line rows with a row cursor. Replace the rows with `set_rows` (one
    call per update); only the rows on screen are drawn."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "row-table--header", "row-table--cursor", "row-table--hover"}

    # The look of DataTable (same theme variables), so both kinds of tables read alike.
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .row-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .row-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .row-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .row-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .row-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .row-table--hover {
            background: $block-hover-background;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("pageup", "cursor_page_up", "Page up", show=False),
        Binding("pagedown", "cursor_page_down", "Page down", show=False),
        Binding("ctrl+home", "cursor_top", "Top", show=False),
        Binding("ctrl+end", "cursor_bottom", "Bottom", show=False),
        Binding("home", "scroll_home", "Home", show=False),
        Binding("end", "scroll_end", "End", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=False, init=False)

    class RowHighlighted(Message):
        """The cursor moved to another row."""

        def __init__(self, table: RowTable, cursor_row: int, row_key: str | None) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row
            self.row_key = row_key

        @property
        def control(self) -> RowTable:
            return self.table

    class RowSelected(Message):
        """Enter on the cursor row, or a click on it."""

        def __init__(self, table: RowTable, cursor_row: int, row_key: str | None) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row
            self.row_key = row_key

        @property
        def control(self) -> RowTable:
            return self.table

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, table: RowTable, column_key: str, column_index: int) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key
            self.column_index = column_index

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column] = []
        self.rows: list[Row] = []
        self.hover_row = -1
        # (row index or -1 for the header, cursor, hover) -> ((scroll_x, width), the line),
        # for the current rows and styles; emptied by set_rows and by style changes.
        self._row_cache: dict[tuple[int, bool, bool], tuple[tuple[int, int], Strip]] = {}
        self._style_state: object = None
        self._styles: dict[str, Style] = {}

    # --- data ------------------------------------------------------------------------------
    def set_columns(self, columns: Iterable[tuple[str, str]]) -> None:
        """(key, label) per column; drops the rows."""
        self.columns = [Column(key, label, cell_len(label)) for key, label in columns]
        self.rows = []
        self._changed()

    def set_rows(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Replace every row: (key, cells in column order). The cursor keeps its index
        (clamped), the scroll position stays."""
        new_rows = [Row(key, tuple(cells)) for key, cells in rows]
        columns = self.columns
        for row in new_rows:
            for column, cell in zip(columns, row.cells, strict=False):
                width = cell_len(cell.plain if isinstance(cell, Text) else cell)
                if width > column.content_width:
                    column.content_width = width
        old_key = self.cursor_key
        self.rows = new_rows
        self._changed()
        old = self.cursor_row
        self.cursor_row = self._clamp(old)
        if self.cursor_row == old and new_rows and new_rows[old].key != old_key:
            # same index, another row under it: as if the cursor had moved
            self.post_message(self.RowHighlighted(self, old, new_rows[old].key))

    def _changed(self) -> None:
        self._row_cache.clear()
        width = sum(c.width for c in self.columns)
        self.virtual_size = Size(width, len(self.rows) + 1)  # + the header line
        self.refresh()

    @property
    def row_keys(self) -> list[str]:
        return [row.key for row in self.rows]

    @property
    def cursor_key(self) -> str | None:
        return self.rows[self.cursor_row].key if self.rows else None

    # --- cursor ----------------------------------------------------------------------------
    def _clamp(self, row: int) -> int:
        return max(0, min(row, len(self.rows) - 1))

    def validate_cursor_row(self, row: int) -> int:
        return self._clamp(row)

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self._scroll_cursor_into_view()
        if self.rows:
            self.post_message(self.RowHighlighted(self, new, self.rows[new].key))

    def move_cursor(self, *, row: int) -> None:
        """Put the cursor on row index `row` (clamped) and scroll it into view."""
        self.cursor_row = self._clamp(row)
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        if not self.rows or not self.size:
            return
        region = Region(int(self.scroll_x), self.cursor_row + 1, self.size.width, 1)
        self.scroll_to_region(region, animate=False, spacing=Spacing(1, 0, 0, 0), force=True,
                              immediate=True, x_axis=False)

    def _refresh_row(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            self.refresh_line(row + 1)

    def _page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_cursor_up(self) -> None:
        self._keyboard()
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self._keyboard()
        self.cursor_row += 1

    def action_cursor_page_up(self) -> None:
        self._keyboard()
        self.cursor_row -= self._page_rows()

    def action_cursor_page_down(self) -> None:
        self._keyboard()
        self.cursor_row += self._page_rows()

    def action_cursor_top(self) -> None:
        self._keyboard()
        self.cursor_row = 0

    def action_cursor_bottom(self) -> None:
        self._keyboard()
        self.cursor_row = len(self.rows) - 1

    def action_scroll_home(self) -> None:
        self.scroll_x = 0

    def action_scroll_end(self) -> None:
        self.scroll_x = self.max_scroll_x

    def action_select_cursor(self) -> None:
        self._keyboard()
        if self.rows:
            self.post_message(self.RowSelected(self, self.cursor_row, self.cursor_key))

    def _keyboard(self) -> None:
        """Keys hide the mouse hover highlight, as DataTable does."""
        if self.hover_row >= 0:
            old, self.hover_row = self.hover_row, -1
            self._refresh_row(old)

    # --- mouse -----------------------------------------------------------------------------
    def _hit(self, event: events.MouseEvent) -> tuple[int, int] | None:
        """(row index or -1 for the header, column index or -1 past the last column)."""
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        x = offset.x + int(self.scroll_x)
        column, left = -1, 0
        for index, col in enumerate(self.columns):
            if left <= x < left + col.width:
                column = index
                break
            left += col.width
        if offset.y == 0:
            return -1, column
        row = offset.y - 1 + int(self.scroll_y)
        return (row, column) if 0 <= row < len(self.rows) else None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        hit = self._hit(event)
        row = hit[0] if hit is not None else -1
        if row != self.hover_row:
            old, self.hover_row = self.hover_row, row
            self._refresh_row(old)
            self._refresh_row(row)

    def on_leave(self, event: events.Leave) -> None:
        self._keyboard()

    def on_click(self, event: events.Click) -> None:
        hit = self._hit(event)
        if hit is None:
            return
        row, column = hit
        if row == -1:
            if column >= 0:
                self.post_message(self.HeaderSelected(self, self.columns[column].key, column))
            return
        if row == self.cursor_row:
            self.post_message(self.RowSelected(self, row, self.rows[row].key))
        else:
            self.cursor_row = row
        event.stop()

    # --- drawing ---------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._row_cache.clear()
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        state = (self.has_focus, self.get_pseudo_class_state(), self.app.theme)
        if state != self._style_state:  # focus or theme changed the component styles
            self._style_state = state
            self._row_cache.clear()
        self._styles = self._compute_styles()  # once per paint, not once per line
        return super().render_lines(crop)

    def _compute_styles(self) -> dict[str, Style]:
        base = self.rich_style
        cursor = self.get_component_rich_style("row-table--cursor")
        return {
            "base": base,
            "header": base + self.get_component_rich_style("row-table--header"),
            "hover": base + self.get_component_rich_style("row-table--hover"),
            "cursor": base + cursor,
            "cursor-post": Style.from_color(cursor.color),  # the CSS colour wins
        }

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        styles = self._styles or self._compute_styles()
        if y == 0:
            key: tuple[int, bool, bool] = (-1, False, False)
        else:
            index = y - 1 + int(self.scroll_y)
            if not 0 <= index < len(self.rows):
                return Strip.blank(width, styles["base"])
            key = (index, index == self.cursor_row, index == self.hover_row)
        view = (scroll_x, width)
        cached = self._row_cache.get(key)
        if cached is None or cached[0] != view:
            index, cursor, hover = key
            if index == -1:
                style, post = styles["header"], None
                cells: Sequence[Cell] = [Text(c.label) for c in self.columns]
            else:
                post = styles["cursor-post"] if cursor else None
                style = styles["cursor" if cursor else "hover" if hover else "base"]
                cells = self.rows[index].cells
            strip = Strip(self._draw(cells, style, post))
            cached = (view, strip.crop_extend(scroll_x, scroll_x + width, style).simplify())
            self._row_cache[key] = cached
        return cached[1]

    def _draw(self, cells: Sequence[Cell], style: Style, post: Style | None) -> list[Segment]:
        """One row: each cell cropped (with an ellipsis) or padded to its column."""
        console = self.app.console
        pad = Segment(" " * PAD, style)
        segments: list[Segment] = []
        for column, cell in zip(self.columns, cells, strict=False):
            width = column.content_width
            plain = cell.plain if isinstance(cell, Text) else cell
            length = cell_len(plain)
            segments.append(pad)
            if length <= width and (isinstance(cell, str) or not cell.spans):
                # the common case (one style for the whole cell), without Text.render
                cell_style = style
                if isinstance(cell, Text) and cell.style:
                    cell_style = style + console.get_style(cell.style)
                segments.append(Segment(plain, cell_style + post if post else cell_style))
            else:
                text = cell if isinstance(cell, Text) else Text(cell, no_wrap=True)
                if length > width:
                    text = text.copy()
                    text.truncate(width, overflow="ellipsis")
                    length = cell_len(text.plain)
                segments.extend(Segment.apply_style(text.render(console), style, post))
            segments.append(Segment(" " * (width - length + PAD), style))
        return segments
