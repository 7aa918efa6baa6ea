"""The reports as the command line and the HTTP API ask for them: the same function, the
same numbers. The projection is brought up to date first (built once after migration 0012,
or after a release that projects more)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from opcatflow.engine import Engine
from opcatflow.engine.errors import InvalidFilter
from opcatflow.workflows.reporting.annual import annual_report
from opcatflow.workflows.reporting.model import Report
from opcatflow.workflows.reporting.recommendations import by_problems, recommendations_report

FIRST_YEAR = 1990  # OPCAT was adopted in 2002; older years hold nothing


def check_year(year: int) -> int:
    if not FIRST_YEAR <= year <= 9999:
        raise InvalidFilter("year", str(year), f"a year from {FIRST_YEAR} to 9999, got {year}")
    return year


def parse_by(text: str) -> tuple[str, ...]:
    by = tuple(name.strip() for name in text.split(",") if name.strip())
    problems = by_problems(by)
    if problems:
        raise InvalidFilter("by", text, "; ".join(problems))
    return by


def recommendations(
    engine: Engine, by: Sequence[str], *, year: int | None = None, on: date | None = None
) -> Report:
    """Recommendations by ``by``; their status on ``on`` (default: 31 December of ``year``,
    else today in the NPM's time zone)."""
    calendar = engine.settings.calendar
    if year is not None:
        check_year(year)
    day = on or (
        date(year, 12, 31) if year is not None else calendar.local_date(engine.clock.now())
    )
    engine.ensure_projection()
    with engine.store.read() as uow:
        return recommendations_report(
            uow,
            by,
            on=day,
            year=year,
            threshold=engine.settings.small_count_threshold,
            zone_name=calendar.tz.key,
        )


def annual(engine: Engine, year: int) -> Report:
    check_year(year)
    engine.ensure_projection()
    with engine.store.read() as uow:
        return annual_report(
            uow,
            year,
            zone=engine.settings.calendar.tz,
            threshold=engine.settings.small_count_threshold,
        )
