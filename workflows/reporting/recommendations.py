"""``report recommendations``: recommendations counted by place, authority, theme, source,
implementation status and year of issue.

Counting rules (docs/reports.md): a recommendation belongs to the year of its ``sent_on``;
its status is its implementation status on the day asked (by default today in the NPM's time
zone; with a year, 31 December of that year). A recommendation naming several places (or
themes) counts once under each, so such a column adds up to more than the recommendations.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from datetime import date

from opcatflow.engine.ports import UnitOfWork
from opcatflow.workflows.reporting.facts import Item, items, year_of
from opcatflow.workflows.reporting.implementation import ASSESSMENT_FIELDS, status_on
from opcatflow.workflows.reporting.model import NOT_RECORDED, Report, build_table
from opcatflow.workflows.reporting.sources import AUTHORITY, PLACE, RECOMMENDATION, THEME
from opcatflow.workflows.reporting.titles import Titles, load_titles

DIMENSIONS = ("place", "authority", "theme", "source", "status", "year")
DEFAULT_BY = ("authority", "status")
# What each dimension reads of the projection (sent_on always: the year filter reads it)
READS_BY = {
    "place": ("places", "place"),
    "authority": ("addressee",),
    "theme": ("themes", "theme"),
    "source": ("source",),
    "status": ASSESSMENT_FIELDS,
    "year": (),
}
READS = ("sent_on", *(f for d in DIMENSIONS for f in READS_BY[d]))


def by_problems(by: Sequence[str]) -> list[str]:
    """Why ``by`` cannot group recommendations (empty when it can)."""
    if not by:
        return ["name at least one of: " + ", ".join(DIMENSIONS)]
    problems = [
        f"cannot count by {name!r}: choose among {', '.join(DIMENSIONS)}"
        for name in by
        if name not in DIMENSIONS
    ]
    if len(set(by)) != len(by):
        problems.append("a dimension is named twice")
    return problems


def _values(item: Item, dimension: str, day: date, titles: Titles) -> list[str]:
    if dimension == "place":
        found = [titles.label(PLACE, v) for v in item.many("places", "place")]
    elif dimension == "authority":
        found = [titles.label(AUTHORITY, v) for v in item.many("addressee")]
    elif dimension == "theme":
        found = [titles.label(THEME, v) for v in item.many("themes", "theme")]
    elif dimension == "source":
        found = item.many("source")
    elif dimension == "status":
        found = [status_on(item, day)]
    else:
        year = year_of(item.one("sent_on"))
        found = [year] if year else []
    return list(dict.fromkeys(found)) or [NOT_RECORDED]


def recommendations_report(
    uow: UnitOfWork,
    by: Sequence[str],
    *,
    on: date,
    year: int | None,
    threshold: int,
    zone_name: str,
) -> Report:
    """Count the recommendations (those sent in ``year`` only, if given) by ``by``, their
    status taken on ``on``."""
    titles = load_titles(uow)
    counts: Counter[tuple[tuple[str, ...], str]] = Counter()
    wanted = str(year) if year is not None else None
    seen = 0
    reads = ("sent_on", *(f for d in by for f in READS_BY[d]))
    for item in items(uow, RECOMMENDATION, reads):
        if wanted is not None and year_of(item.one("sent_on")) != wanted:
            continue
        seen += 1
        groups = [_values(item, d, on, titles) for d in by]
        for labels in itertools.product(*groups):
            counts[(tuple(labels), "count")] += 1
    table = build_table(
        "recommendations",
        "Recommendations by " + ", ".join(by),
        by,
        counts,
        threshold=threshold,
        rule=(
            "Each recommendation counts once per combination of its values: one naming two "
            "places counts under each. Status: the latest assessment on or before "
            f"{on.isoformat()}; year: of sent_on."
        ),
    )
    parameters = {
        "by": ",".join(by),
        "status_on": on.isoformat(),
        "year": wanted or "all",
        "time_zone": zone_name,
        "threshold": str(threshold),
        "recommendations": str(seen) if seen >= threshold or seen == 0 else f"<{threshold}",
    }
    return Report("recommendations", "Recommendations", parameters, (table,))
