"""Bar charts drawn on the server as SVG (``templates/_charts.html``): no charting library,
no script. Each page that shows one also shows its figures as a table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from math import ceil

# Colours: series-1 … series-8 in app.css (a tier's colour is its number's).
COLOURS = 8
# Axis labels under vertical bars: about this many at most, so they never overlap.
AXIS_LABELS = 12


def colour(n: int) -> str:
    """The CSS class of the ``n``-th colour (1-based; the last one repeats beyond it)."""
    return f"series-{min(max(n, 1), COLOURS)}"


@dataclass(frozen=True)
class Series:
    label: str
    css: str


@dataclass(frozen=True)
class BarChart:
    """Stacked bars: one bar per label, one segment per series (``values[bar][series]``).
    ``titles`` name each bar in full (tooltips); ``horizontal`` draws one bar per row, its
    label beside it (rankings, funnels) instead of columns over an axis (time)."""

    id: str  # unique on its page: the SVG's title is referred to by it
    title: str
    labels: list[str]
    titles: list[str]
    series: list[Series]
    values: list[list[Decimal | int]]
    horizontal: bool = False

    @property
    def totals(self) -> list[Decimal | int]:
        return [sum(row, 0) for row in self.values]

    @property
    def top(self) -> Decimal | int:
        """The scale: the largest bar (1 when every bar is empty, so nothing divides by 0)."""
        return max([*self.totals, 0]) or 1

    @property
    def label_every(self) -> int:
        return ceil(len(self.labels) / AXIS_LABELS) if self.labels else 1
