"""Bar charts drawn on the server as SVG (``templates/_charts.html``): no charting library,
no script. Each page that shows one also shows its figures as a table.

The geometry is computed here rather than in the template: a year's chart is hundreds of
rectangles, and a Jinja loop doing the arithmetic took most of the reports page's time."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from math import ceil

from app.money import format_money

# Colours: series-1 … series-8 in app.css (a tier's colour is its number's).
COLOURS = 8
# Axis labels under vertical bars: about this many at most, so they never overlap.
AXIS_LABELS = 12
WIDTH = 720
# Vertical bars: the plot's height, room at the left for the scale and below for the axis.
HEIGHT, LEFT, BOTTOM, HEADROOM = 220, 84, 24, 20
# Horizontal bars: room for the labels at the left and the totals at the right, per row.
ROW_LEFT, ROW_RIGHT, ROW = 170, 130, 24


def colour(n: int) -> str:
    """The CSS class of the ``n``-th colour (1-based; the last one repeats beyond it)."""
    return f"series-{min(max(n, 1), COLOURS)}"


@dataclass(frozen=True)
class Series:
    label: str
    css: str


@dataclass(frozen=True)
class Rect:
    x: str
    y: str
    width: str
    height: str
    css: str
    title: str


@dataclass(frozen=True)
class Text:
    x: str
    y: str
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    rects: list[Rect]
    texts: list[Text]
    axis: tuple[int, int, int, int] | None  # x1, y1, x2, y2 of the time axis


def _n(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class BarChart:
    """Stacked bars: one bar per label, one segment per series (``values[bar][series]``).
    ``titles`` name each bar in full (tooltips); ``horizontal`` draws one bar per row, its
    label beside it (rankings, funnels) instead of columns over an axis (time). Amounts are
    money in ``currency``, else counts."""

    id: str  # unique on its page: the SVG's title is referred to by it
    title: str
    labels: list[str]
    titles: list[str]
    series: list[Series]
    values: list[list[Decimal | int]]
    horizontal: bool = False
    currency: str | None = None

    @property
    def totals(self) -> list[Decimal | int]:
        return [sum(row, 0) for row in self.values]

    @property
    def top(self) -> Decimal | int:
        """The scale: the largest bar (1 when every bar is empty, so nothing divides by 0)."""
        return max([*self.totals, 0]) or 1

    def figure(self, value: Decimal | int) -> str:
        return format_money(value, self.currency) if self.currency else f"{value:,}"

    def _rect(self, i: int, s: int, x: float, y: float, w: float, h: float) -> Rect:
        series = self.series[s]
        title = f"{self.titles[i]}, {series.label}: {self.figure(self.values[i][s])}"
        return Rect(_n(x), _n(y), _n(w), _n(h), series.css, title)

    def drawing(self) -> Drawing:
        return self._rows() if self.horizontal else self._columns()

    def _columns(self) -> Drawing:
        top, slot = self.top, (WIDTH - LEFT) / max(len(self.labels), 1)
        every = ceil(len(self.labels) / AXIS_LABELS) if self.labels else 1
        rects, texts = [], [Text(str(LEFT - 6), "14", self.figure(top), "end")]
        for i, row in enumerate(self.values):
            x, y = LEFT + i * slot + slot * 0.15, HEIGHT - BOTTOM
            for s, amount in enumerate(row):
                if amount:
                    h = float(amount / top) * (HEIGHT - BOTTOM - HEADROOM)
                    y -= h
                    rects.append(self._rect(i, s, x, y, slot * 0.7, h))
            if i % every == 0:
                texts.append(Text(_n(x + slot * 0.35), str(HEIGHT - 6), self.labels[i], "middle"))
        return Drawing(WIDTH, HEIGHT, rects, texts, (LEFT, HEIGHT - BOTTOM, WIDTH, HEIGHT - BOTTOM))

    def _rows(self) -> Drawing:
        top, rects, texts = self.top, [], []
        for i, row in enumerate(self.values):
            x, y = ROW_LEFT, i * ROW + 2
            label = self.labels[i] if len(self.labels[i]) <= 24 else self.labels[i][:23] + "…"
            texts.append(Text(str(ROW_LEFT - 8), str(y + 16), label, "end"))
            for s, amount in enumerate(row):
                if amount:
                    w = float(amount / top) * (WIDTH - ROW_LEFT - ROW_RIGHT)
                    rects.append(self._rect(i, s, x, y + 3, w, ROW - 6))
                    x += w
            texts.append(Text(_n(x + 6), str(y + 16), self.figure(self.totals[i])))
        return Drawing(WIDTH, ROW * max(len(self.labels), 1) + 4, rects, texts, None)
