"""A report as CSV: one line per published value (table, row, column, value), so every
table of a report fits one file; totals are rows named ``total``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from opcatflow.adapters.reports.grid import TOTAL, grid

HEADER = ("table", "row", "column", "value")


def report_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for table in report["tables"]:
        g = grid(table)
        n_dims = len(table["dimensions"])
        for row in [*g.rows, g.totals]:
            label = " / ".join(v for v in row[:n_dims] if v)
            for header, value in zip(g.headers[n_dims:], row[n_dims:], strict=True):
                writer.writerow((table["name"], label or TOTAL, header, value))
    for rate in report["rates"]:
        for part in ("rate", "numerator", "denominator"):
            writer.writerow(("rates", rate["name"], part, rate[part]))
    return out.getvalue()
