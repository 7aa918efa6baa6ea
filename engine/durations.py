"""Durations and deadline expressions as written in definitions: ``10 working days``,
``2 months``, ``7 months before session_start``, ``config:visit.factual_check``.

Only parsing lives here; turning a duration into a due date (calendars, time zones) belongs to
:mod:`opcatflow.engine.calendar`.
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

# About a century in each unit: longer is a typo, and would overflow date arithmetic.
LIMITS = {
    Unit.HOURS: 876_000,
    Unit.DAYS: 36_500,
    Unit.WORKING_DAYS: 26_000,
    Unit.WEEKS: 5_200,
    Unit.MONTHS: 1_200,
    Unit.YEARS: 100,
}

SETTING_PREFIX = "config:"
SETTING_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([a-z]+(?: days?)?)\s*$")
_EXPRESSION = re.compile(
    r"^(?P<duration>.+?)(?:\s+(?P<direction>before|after)\s+(?P<anchor>\w+))?$"
)
ENTERED = "entered"


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        unit = self.unit.value.replace("_", " ")
        return f"{self.amount} {unit[:-1] if self.amount == 1 else unit}"

    @property
    def calendar_based(self) -> bool:
        """Counted in dates (due at the end of a day), not in hours."""
        return self.unit is not Unit.HOURS

    def days_range(self) -> tuple[float, float]:
        """The shortest and longest this duration can last, in days (for sanity checks)."""
        n = self.amount
        return {
            Unit.HOURS: (n / 24, n / 24),
            Unit.DAYS: (n, n),
            Unit.WORKING_DAYS: (n, n * 7 / 5 + 14),  # weekends, and a margin for holidays
            Unit.WEEKS: (7 * n, 7 * n),
            Unit.MONTHS: (28 * n, 31 * n),
            Unit.YEARS: (365 * n, 366 * n),
        }[self.unit]


def at_least(value: Duration, minimum: Duration) -> bool:
    """Whether ``value`` can never be shorter than ``minimum`` (the same unit: by amount;
    otherwise its shortest length against the minimum's longest: 30 days is not always
    one month, 5 weeks is)."""
    if value.unit is minimum.unit:
        return value.amount >= minimum.amount
    return value.days_range()[0] >= minimum.days_range()[1]


@dataclass(frozen=True)
class SettingRef:
    """A duration the NPM sets in its settings file, under ``deadlines: {key: ...}``."""

    key: str

    def __str__(self) -> str:
        return f"{SETTING_PREFIX}{self.key}"


Period = Duration | SettingRef


@dataclass(frozen=True)
class DueExpression:
    """``<period> [before|after <anchor>]``; the anchor is ``entered`` or a date field."""

    duration: Period
    direction: str = "after"
    anchor: str = ENTERED


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
            "hours, days, working days (wd), weeks, months, years, or 'config:<key>' for a "
            "duration set in the NPM's settings"
        )
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"malformed duration {text!r}: must be at least 1")
    if amount > LIMITS[unit]:
        raise ValueError(
            f"duration {text!r} is longer than a century ({LIMITS[unit]} {unit.value} at most)"
        )
    return Duration(amount, unit)


def parse_period(text: str) -> Period:
    """Parse ``<n> <unit>`` or ``config:<key>``.

    Raises:
        ValueError: a malformed duration or settings key.
    """
    stripped = text.strip()
    if stripped.startswith(SETTING_PREFIX):
        key = stripped.removeprefix(SETTING_PREFIX).strip()
        if not SETTING_KEY.match(key):
            raise ValueError(
                f"malformed settings key {key!r}: expected dotted lower-case names such as "
                "'visit.factual_check'"
            )
        return SettingRef(key)
    return parse_duration(stripped)


def parse_offset(text: str) -> Period:
    """Parse an alert's ``after``: a period as :func:`parse_period`, or zero (``0 days``:
    at the due date itself).

    Raises:
        ValueError: a malformed period.
    """
    match = _DURATION.match(text.strip().lower())
    unit = _UNITS.get(match.group(2)) if match else None
    if match is not None and unit is not None and int(match.group(1)) == 0:
        return Duration(0, unit)
    return parse_period(text)


def parse_due(text: str) -> DueExpression:
    """Parse ``<period> [before|after <anchor>]``.

    Raises:
        ValueError: when the period is malformed, or the expression counts back from the
            moment the deadline is armed (``before entered``).
    """
    match = _EXPRESSION.match(text.strip())
    if match is None:
        raise ValueError("a deadline needs a duration, e.g. '10 working days'")
    duration = parse_period(match.group("duration"))
    direction = match.group("direction") or "after"
    anchor = match.group("anchor") or ENTERED
    if anchor == ENTERED and direction == "before":
        raise ValueError(
            f"{text!r} would fall due before the state is entered: "
            "count 'before' a date field, or 'after entered'"
        )
    return DueExpression(duration, direction, anchor)
