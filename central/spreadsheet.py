"""Rows into an openpyxl sheet as values: a string is always a text cell, never a formula.

openpyxl writes any string that starts with ``=`` as a formula, and Excel runs formulas
when the office opens an export (``=HYPERLINK(...)`` sends a click, with the row's data,
to another host). What central exports is data (plates, places, reasons people typed), so
each such cell is typed back to text: the exact string, shown as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell.cell import TYPE_STRING
from openpyxl.worksheet.worksheet import Worksheet


def append_values(sheet: Worksheet, row: Iterable[Any]) -> None:
    """Append ``row`` to ``sheet``; strings stay text cells whatever they start with."""
    sheet.append(list(row))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.data_type != TYPE_STRING:
            cell.data_type = TYPE_STRING
