"""CSV for streamed downloads: rows written as they come, cells a spreadsheet reads as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal

# A text cell starting with one of these is a formula in a spreadsheet: quote it as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 16_384


def safe_cell(value: object) -> str:
    """The cell's text; text that a spreadsheet would run as a formula gets a leading ``'``.
    Numbers are written as they are (``-5.00`` is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, Decimal | int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def stream_csv(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """``rows`` (the header first) as CSV text in chunks of about 16 KB, every cell safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(safe_cell(value) for value in row)
        if buffer.tell() > _CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
