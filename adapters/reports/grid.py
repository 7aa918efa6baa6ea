"""A published table (a report's JSON) as a grid of text: headers, rows and a total line.
Every output (the terminal table, CSV, HTML) is drawn from the report's JSON, the very
document ``GET /reports/...`` returns, so they cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TOTAL = "total"


@dataclass(frozen=True)
class Grid:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    totals: tuple[str, ...]
    values: tuple[str, ...]  # one value per row, what a chart draws (its total)


def grid(table: Mapping[str, Any]) -> Grid:
    dims = list(table["dimensions"])
    columns = list(table["columns"])
    wide = "column_totals" in table
    headers = [*dims, *columns, *([TOTAL] if wide else [])]
    rows = tuple(tuple(str(row[h]) for h in headers) for row in table["rows"])
    spacer = [""] * (len(dims) - 1)
    if wide:
        totals = [TOTAL, *spacer, *(table["column_totals"][c] for c in columns), table[TOTAL]]
    else:
        totals = [TOTAL, *spacer, table[TOTAL]]
    values = tuple(row[-1] for row in rows)
    return Grid(tuple(headers), rows, tuple(totals), values)
