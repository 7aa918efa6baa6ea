"""A report as published: tables of counts (small counts suppressed) and rates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opcatflow.workflows.reporting.suppression import Cell, Suppression, suppress

NOT_RECORDED = "(not recorded)"
WITHHELD = "x"  # a cell withheld so that a small one cannot be worked out
COUNT = "count"  # the column of a table of one dimension


@dataclass(frozen=True)
class Table:
    """Counts by row (one or more dimensions) and column. A table of one column (``count``)
    publishes its grand total only; a wider one also each row's and column's total."""

    name: str
    title: str
    dimensions: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    columns: tuple[str, ...]
    cells: dict[Cell, int]
    suppression: Suppression
    rule: str = ""

    @property
    def wide(self) -> bool:
        return len(self.columns) > 1

    def small(self) -> str:
        return f"<{self.suppression.threshold}"

    def shown(self, row: int, column: int) -> str:
        s = self.suppression
        if s.withheld:
            return WITHHELD
        if (row, column) in s.small:
            return self.small()
        if (row, column) in s.complementary:
            return WITHHELD
        return str(self.cells.get((row, column), 0))

    def row_total(self, row: int) -> str:
        if self.suppression.withheld:
            return WITHHELD
        if row in self.suppression.small_row_totals:
            return self.small()
        return str(sum(self.cells.get((row, c), 0) for c in range(len(self.columns))))

    def column_total(self, column: int) -> str:
        if self.suppression.withheld:
            return WITHHELD
        if column in self.suppression.small_column_totals:
            return self.small()
        return str(sum(self.cells.get((r, column), 0) for r in range(len(self.rows))))

    def total(self) -> str:
        if self.suppression.withheld:
            return WITHHELD
        if self.suppression.small_grand_total:
            return self.small()
        return str(sum(self.cells.values()))

    def as_json(self) -> dict[str, Any]:
        rows = []
        for r, labels in enumerate(self.rows):
            row: dict[str, Any] = dict(zip(self.dimensions, labels, strict=True))
            row.update({col: self.shown(r, c) for c, col in enumerate(self.columns)})
            if self.wide:
                row["total"] = self.row_total(r)
            rows.append(row)
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "dimensions": list(self.dimensions),
            "columns": list(self.columns),
            "rows": rows,
            "total": self.total(),
            "rule": self.rule,
        }
        if self.wide:
            out["column_totals"] = {col: self.column_total(c) for c, col in enumerate(self.columns)}
        return out


def build_table(
    name: str,
    title: str,
    dimensions: Sequence[str],
    counts: Counter[tuple[tuple[str, ...], str]],
    *,
    threshold: int,
    rule: str = "",
) -> Table:
    """A table from counts keyed by (row labels, column), rows sorted by label (not
    recorded last) and suppressed at ``threshold``."""
    row_labels = sorted({r for r, _ in counts}, key=lambda r: [(v == NOT_RECORDED, v) for v in r])
    all_columns = tuple(sorted({c for _, c in counts})) or (COUNT,)
    r_index = {r: i for i, r in enumerate(row_labels)}
    c_index = {c: i for i, c in enumerate(all_columns)}
    cells = {(r_index[r], c_index[c]): n for (r, c), n in counts.items() if n}
    wide = len(all_columns) > 1
    suppression = suppress(
        cells,
        (len(row_labels), len(all_columns)),
        threshold=threshold,
        row_totals=wide,
        column_totals=True,
    )
    return Table(
        name, title, tuple(dimensions), tuple(row_labels), all_columns, cells, suppression, rule
    )


@dataclass(frozen=True)
class Rate:
    """``numerator`` out of ``denominator``; withheld when either is below the threshold."""

    name: str
    title: str
    numerator: int
    denominator: int
    threshold: int
    rule: str
    hidden_cells: bool = False  # a count it is made of is withheld in its table

    @property
    def withheld(self) -> bool:
        small = 0 < self.numerator < self.threshold or self.denominator < self.threshold
        return small or self.hidden_cells

    def shown(self) -> str:
        if self.withheld:
            return WITHHELD
        return f"{100 * self.numerator / self.denominator:.1f}%"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "title": self.title, "rule": self.rule}
        if self.withheld:
            out.update(rate=WITHHELD, numerator=WITHHELD, denominator=WITHHELD)
        else:
            out.update(rate=self.shown(), numerator=self.numerator, denominator=self.denominator)
        return out


@dataclass(frozen=True)
class Report:
    kind: str
    title: str
    parameters: dict[str, str]
    tables: tuple[Table, ...]
    rates: tuple[Rate, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "report": self.kind,
            "title": self.title,
            "parameters": self.parameters,
            "tables": [t.as_json() for t in self.tables],
            "rates": [r.as_json() for r in self.rates],
        }
