"""Partial dates: a year (``2019``) or a month (``2019-05``) where the source gives no day.

Official sources often give only part of a date ("the report is due in 2019", "the visit
took place in May 2027"). A date field declared ``partial: true`` accepts such a value as
well as a full ``YYYY-MM-DD`` day, and stores it as entered, so its precision is the value
itself: four digits are a year, seven a month, ten a day.

Wherever the engine needs one day for a partial date (a due date, an anchor, a minimum, the
day an obligation was met), it takes the LAST day of the period: an obligation "due in
2019" is owed until 31 December 2019, never earlier than the source says. Views show the
value as entered ("2019"), not the day the engine counts with.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

Precision = Literal["year", "month", "day"]

_PARTIAL = re.compile(r"(\d{4})(?:-(\d{2}))?")
PATTERN = r"^\d{4}(-\d{2}(-\d{2})?)?$"  # the JSON Schema of a partial date field


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A year, a month or a day, with the first and last day it covers."""

    text: str
    precision: Precision
    first: date
    last: date


def parse_partial(text: str) -> PartialDate:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.

    Raises:
        ValueError: anything else, or a month or day that does not exist.
    """
    match = _PARTIAL.fullmatch(text)
    if match is None:
        day = date.fromisoformat(text)  # a full day, or the ValueError that says why not
        return PartialDate(day.isoformat(), "day", day, day)
    year, month = int(match[1]), match[2]
    if year < 1:
        raise ValueError(f"year 0 does not exist: {text!r}")
    if month is None:
        return PartialDate(text, "year", date(year, 1, 1), date(year, 12, 31))
    first = date(year, int(month), 1)  # ValueError for month 00 or 13
    last = date(year, first.month, calendar.monthrange(year, first.month)[1])
    return PartialDate(text, "month", first, last)


def counted_day(value: str | date) -> date:
    """The day the engine counts with for a date field's value: the last day of a partial
    date's period, the day itself otherwise."""
    return value if isinstance(value, date) else parse_partial(value).last


def is_partial(value: object) -> bool:
    """Whether a stored value is a year or a month rather than a day."""
    return isinstance(value, str) and _PARTIAL.fullmatch(value) is not None


__all__ = ["PATTERN", "PartialDate", "Precision", "counted_day", "is_partial", "parse_partial"]
