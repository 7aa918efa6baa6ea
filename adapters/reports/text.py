"""A report as text for a terminal: one aligned table per section, then the rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opcatflow.adapters.reports.grid import grid


def _aligned(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]


def report_text(report: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k} {v}" for k, v in report["parameters"].items())
    lines = [report["title"], f"({params})", ""]
    for table in report["tables"]:
        g = grid(table)
        lines.append(table["title"])
        lines.extend(_aligned(g.headers, [*g.rows, g.totals]))
        if table["rule"]:
            lines.append(f"  counted: {table['rule']}")
        lines.append("")
    for rate in report["rates"]:
        lines.append(
            f"{rate['title']}: {rate['rate']} ({rate['numerator']} of {rate['denominator']}; "
            f"{rate['rule']})"
        )
    return "\n".join(lines).rstrip() + "\n"
