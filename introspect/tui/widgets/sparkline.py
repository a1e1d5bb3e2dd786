"""OneLineSparkline: Textual's `Sparkline` (same bars, colours, CSS and `data`), drawn
straight to one line of segments.

`Sparkline` renders through Rich: per bar a `Fraction` bucket bound, a blended `Color`, a
`Style` and a `Segment`, then Rich's line splitting and cropping: ~3–4 ms for a 118-column
chart on a 2-core VM, ~30 ms for the Load tab's eight. Here the buckets use integer
arithmetic (the same bounds), blended styles are reused per colour, and the line is built as
a `Strip`: the same cells for a fraction of the time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widgets import Sparkline

BARS = "▁▂▃▄▅▆▇█"


class OneLineSparkline(Sparkline):
    DEFAULT_CSS = """
    OneLineSparkline {
        height: 1;
    }
    """

    _styles: tuple[object, dict[tuple[int, int, int], Style]] = (None, {})

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if height != 1:  # multi-line charts: Sparkline's own rendering
            return super().render_line(y)
        _, background = self.background_colors
        min_color = (background + self.get_component_styles("sparkline--min-color").color
                     ).rich_color
        max_color = (background + self.get_component_styles("sparkline--max-color").color
                     ).rich_color
        base = self.rich_style
        key = (min_color, max_color, base)
        if self._styles[0] != key:  # theme or style change: other colours
            self._styles = (key, {})
        segments = chart_segments(list(self.data or []), width, min_color, max_color,
                                  self.summary_function, base, self._styles[1])
        return Strip(segments, width)


def chart_segments(data: list[float], width: int, min_color: Color, max_color: Color,
                   summary: Callable[[Sequence[float]], float] = max,
                   base: Style | None = None,
                   styles: dict[tuple[int, int, int], Style] | None = None) -> list[Segment]:
    """One line of bars, cell for cell what `textual.renderables.sparkline.Sparkline`
    draws at height 1 (under `base`, the widget's style, as Textual applies it). `styles`:
    the bar styles by colour, kept between calls with the same colours and `base`."""
    base = base or Style()
    styles = {} if styles is None else styles
    if width <= 0:
        return []
    if not data:
        return [Segment(BARS[0] * width, base + Style.from_color(min_color))]
    if len(data) == 1:
        return [Segment(BARS[-1] * width, base + Style.from_color(max_color))]
    minimum, maximum = min(data), max(data)
    extent = maximum - minimum or 1
    count = len(data)
    buckets = [data[count * b // width: count * (b + 1) // width] for b in range(width)]
    buckets = [bucket for bucket in buckets if bucket]
    step = len(buckets) / width
    # blend_colors(min_color, max_color, ratio) is Color.from_rgb of these floats, which
    # truncates them to ints: the same triplet is the same colour.
    r1, g1, b1 = min_color.get_truecolor()
    r2, g2, b2 = max_color.get_truecolor()
    dr, dg, db = r2 - r1, g2 - g1, b2 - b1
    segments: list[Segment] = []
    bars: list[str] = []  # the run of bars in `style`, one segment per run
    style: Style | None = None
    index = 0.0
    top = len(BARS) - 1  # Sparkline's bar_segments at height 1
    for _ in range(width):
        ratio = (summary(buckets[int(index)]) - minimum) / extent
        triplet = (int(r1 + dr * ratio), int(g1 + dg * ratio), int(b1 + db * ratio))
        bar_style = styles.get(triplet)
        if bar_style is None:
            bar_style = styles[triplet] = base + Style.from_color(Color.from_rgb(*triplet))
        if bar_style is not style and bars:
            segments.append(Segment("".join(bars), style))
            bars = []
        style = bar_style
        bars.append(BARS[int(ratio * top)])
        index += step
    segments.append(Segment("".join(bars), style))
    return segments
