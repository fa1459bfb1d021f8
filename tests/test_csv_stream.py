"""Every CSV download's cells: text a spreadsheet would run is quoted, numbers stay numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.csv_stream import safe_cell


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        *[("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM", "'@SUM")],
        *[("\tx", "'\tx"), ("\rx", "'\rx"), ("Jane", "Jane"), ("", ""), (None, "")],
        *[(Decimal("-12.34"), "-12.34"), (3, "3")],
    ],
)
def test_cells_a_spreadsheet_would_run_are_text(cell, safe):
    assert safe_cell(cell) == safe
