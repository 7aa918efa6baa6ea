"""Durations and deadline expressions as written in definitions: ``10 working days``,
``2 months``, ``7 months before session_start``.

Only parsing lives here; turning a duration into a due date (calendars, time zones) belongs to
the scheduler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    HOURS = "hours"
    DAYS = "days"
    WORKING_DAYS = "working_days"
    WEEKS = "weeks"
    MONTHS = "months"
    YEARS = "years"


_UNITS = {
    "h": Unit.HOURS,
    "hour": Unit.HOURS,
    "hours": Unit.HOURS,
    "d": Unit.DAYS,
    "day": Unit.DAYS,
    "days": Unit.DAYS,
    "wd": Unit.WORKING_DAYS,
    "working day": Unit.WORKING_DAYS,
    "working days": Unit.WORKING_DAYS,
    "business day": Unit.WORKING_DAYS,
    "business days": Unit.WORKING_DAYS,
    "w": Unit.WEEKS,
    "week": Unit.WEEKS,
    "weeks": Unit.WEEKS,
    "month": Unit.MONTHS,
    "months": Unit.MONTHS,
    "y": Unit.YEARS,
    "year": Unit.YEARS,
    "years": Unit.YEARS,
}

_DURATION = re.compile(r"^\s*(\d{1,5})\s*([a-z]+(?: days?)?)\s*$")
_EXPRESSION = re.compile(
    r"^(?P<duration>.+?)(?:\s+(?P<direction>before|after)\s+(?P<anchor>\w+))?$"
)


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value.replace('_', ' ')}"


@dataclass(frozen=True)
class DueExpression:
    """``<duration> [before|after <anchor>]``; the anchor is ``entered`` or a date field."""

    duration: Duration
    direction: str = "after"
    anchor: str = "entered"


def parse_duration(text: str) -> Duration:
    """Parse ``<n> <unit>``.

    Raises:
        ValueError: with a message that lists the accepted units.
    """
    match = _DURATION.match(text.lower())
    unit = _UNITS.get(match.group(2)) if match else None
    if match is None or unit is None:
        raise ValueError(
            f"malformed duration {text!r}: expected '<number> <unit>' with a unit among "
            "hours, days, working days (wd), weeks, months, years"
        )
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"malformed duration {text!r}: must be at least 1")
    return Duration(amount, unit)


def parse_due(text: str) -> DueExpression:
    """Parse ``<duration> [before|after <anchor>]``.

    Raises:
        ValueError: when the duration is malformed.
    """
    match = _EXPRESSION.match(text.strip())
    assert match is not None  # the pattern matches any non-empty text
    duration = parse_duration(match.group("duration"))
    return DueExpression(
        duration, match.group("direction") or "after", match.group("anchor") or "entered"
    )
