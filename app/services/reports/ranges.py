"""The dates a report covers: the last 30, 90 or 365 days, or any span up to a year."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

PRESETS = (30, 90, 365)
MAX_DAYS = 366
# The earliest day a report can start: sales are dated from 2000 on (a CHECK on sales).
EARLIEST = date(2000, 1, 1)
# Longer ranges are drawn and tabled by week: 90 days are 13 bars and rows, not 90 (the
# CSV has every day).
DAILY_UP_TO = 31


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class ReportRange:
    """Inclusive UTC days. ``preset`` is the number of days when the range is one of
    ``PRESETS`` ending today: only those have a ranking of top affiliates. ``daily``: a row
    per day however long the range (the CSV)."""

    start: date
    end: date
    preset: int | None = None
    daily: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def unit(self) -> str:
        """What one bar and one table row cover: ``day`` or ``week`` (Monday to Sunday,
        the first one starting at ``start``)."""
        return "day" if self.daily or self.days <= DAILY_UP_TO else "week"

    def buckets(self) -> list[date]:
        """The first day of every bar, as the reports' SQL labels them."""
        if self.unit == "day":
            return [self.start + timedelta(days=n) for n in range(self.days)]
        monday = self.start - timedelta(days=self.start.weekday())
        weeks = range(1, (self.end - monday).days // 7 + 1)
        return [self.start] + [monday + timedelta(weeks=n) for n in weeks]


def last_days(days: int, today: date | None = None) -> ReportRange:
    """The ``days`` days ending today (UTC), today included."""
    today = today or utc_today()
    return ReportRange(today - timedelta(days=days - 1), today, days)


def range_problem(start: date, end: date, today: date | None = None) -> str | None:
    """Why ``start`` to ``end`` is not a range a report can cover, or None."""
    today = today or utc_today()
    if start > end:
        return "The end date is before the start date."
    if start < EARLIEST:
        return f"Reports start on {EARLIEST:%Y-%m-%d} at the earliest."
    if end > today:
        return "The end date is in the future."
    if (end - start).days + 1 > MAX_DAYS:
        return f"At most {MAX_DAYS} days at a time."
    return None
