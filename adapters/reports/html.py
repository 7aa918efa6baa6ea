"""A report as one self-contained HTML page: its tables, an SVG bar chart per table, the
counting rules; the style is inline and nothing is loaded from anywhere else (no URL, no
script, no font), so the page can be mailed, archived or printed as it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from opcatflow.adapters.reports.grid import grid
from opcatflow.adapters.reports.svg import bar_chart

CHART_ROWS = 40  # a chart of more bars than this is read by nobody: the table has them all
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; }
tr.total td { font-weight: bold; }
.rule, .params { color: #555; font-size: 0.9em; }
svg text { font-size: 12px; fill: #222; }
svg .bar { fill: #4a6fa5; }
"""


def _row(cells: Sequence[str], n_dims: int, tag: str = "td") -> str:
    out = []
    for i, cell in enumerate(cells):
        numeric = ' class="n"' if i >= n_dims and tag == "td" else ""
        out.append(f"<{tag}{numeric}>{escape(cell)}</{tag}>")
    return "".join(out)


def _table(table: Mapping[str, Any]) -> str:
    g = grid(table)
    n_dims = len(table["dimensions"])
    labels = [" / ".join(r[:n_dims]) for r in g.rows[:CHART_ROWS]]
    body = "".join(f"<tr>{_row(r, n_dims)}</tr>" for r in g.rows)
    more = len(g.rows) - CHART_ROWS
    caption = (
        f'<p class="rule">The chart shows the first {CHART_ROWS} rows; the table lists all '
        f"{len(g.rows)}.</p>"
        if more > 0
        else ""
    )
    return (
        f"<section><h2>{escape(table['title'])}</h2>"
        f"{bar_chart(table['title'], labels, g.values[:CHART_ROWS])}{caption}"
        f"<table><thead><tr>{_row(g.headers, n_dims, 'th')}</tr></thead><tbody>{body}"
        f'<tr class="total">{_row(g.totals, n_dims)}</tr></tbody></table>'
        f'<p class="rule">Counted: {escape(table["rule"])}</p></section>'
    )


def report_html(report: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}: {v}" for k, v in report["parameters"].items())
    rates = "".join(
        f"<li>{escape(r['title'])}: <strong>{escape(str(r['rate']))}</strong> "
        f"({escape(str(r['numerator']))} of {escape(str(r['denominator']))}; "
        f"{escape(r['rule'])})</li>"
        for r in report["rates"]
    )
    threshold = escape(str(report["parameters"].get("threshold", "")))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report['title'])}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(report["title"])}</h1><p class="params">{escape(params)}</p>'
        f'<p class="params">A count below {threshold} is shown as &lt;{threshold}; a cell '
        "shown as x is withheld so that no small count can be worked out from the totals."
        "</p>"
        + "".join(_table(t) for t in report["tables"])
        + (f"<h2>Rates</h2><ul>{rates}</ul>" if rates else "")
        + "</body></html>\n"
    )
