"""Bar charts drawn on the server as inline SVG: no script, no font or file from elsewhere.
A withheld value (``<5``, ``x``) is drawn as no bar, with its label."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

ROW = 22
LABEL_WIDTH = 240
BAR_WIDTH = 360
VALUE_WIDTH = 60


def bar_chart(title: str, labels: Sequence[str], values: Sequence[str]) -> str:
    numbers = [int(v) if v.isdigit() else 0 for v in values]
    top = max(numbers, default=0) or 1
    height = ROW * max(len(labels), 1) + 8
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, shown, number) in enumerate(zip(labels, values, numbers, strict=True)):
        y = 4 + i * ROW
        bar = round(BAR_WIDTH * number / top)
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(label[:40])}</text>"
        )
        if bar:
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{bar}" height="{ROW - 6}" '
                'class="bar"/>'
            )
        parts.append(f'<text x="{LABEL_WIDTH + bar + 4}" y="{y + 15}">{escape(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)
