"""Date arithmetic in the NPM's calendar: its time zone, its weekend and its public holidays.

The rules (README "Deadlines" and docs/deadlines.md say the same for operators):

- Hours are exact: ``48 hours`` after 10:15 is 10:15 two days later (daylight saving changes
  count as they happen).
- Days, weeks, months and years are counted on the NPM's local calendar dates; months and
  years clamp to the end of a shorter month (31 January + 1 month = 28 or 29 February).
- Working days skip the weekend and the public holidays of the configured country and
  subdivision (the ``holidays`` package), plus any closure days the NPM adds. The start day
  never counts: 1 working day after a Friday is the next Monday (if it is not a holiday).
- A period counted in dates falls due at the *end* of its last day, local time: "7 days after
  a complaint received on 2 March" may be met any time on 9 March and is overdue at midnight.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from opcatflow.engine.durations import Duration, Unit

_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` (negative goes back), clamped to the end of a short month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


class WorkingCalendar:
    """Time zone, weekend and holidays of one NPM.

    Args:
        timezone: an IANA name, e.g. ``Europe/Paris``.
        country: ISO 3166 code known to the ``holidays`` package, or ``None`` for weekends
            only.
        subdivision: a subdivision code of that country (a region, state or canton).
        weekend: weekday numbers (Monday 0 ... Sunday 6); default: the country's own weekend,
            or Saturday and Sunday.
        closures: extra non-working days of the NPM itself (office closures), date -> name.

    Raises:
        ValueError: an unknown time zone, country or subdivision.
    """

    def __init__(
        self,
        timezone: str = "UTC",
        country: str | None = None,
        subdivision: str | None = None,
        weekend: Iterable[int] | None = None,
        closures: Mapping[date, str] | None = None,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ValueError, KeyError) as err:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {timezone!r} (use an IANA name)") from err
        self.timezone = timezone
        self.country = country
        self.subdivision = subdivision
        self._holidays: Any = None
        if country is not None:
            try:
                self._holidays = holidays.country_holidays(country, subdiv=subdivision)
            except NotImplementedError as err:
                raise ValueError(str(err)) from None
        elif subdivision is not None:
            raise ValueError("a subdivision needs a country")
        if weekend is None:
            weekend = getattr(self._holidays, "weekend", None) or (5, 6)
        self.weekend = frozenset(weekend)
        if len(self.weekend) > 5 or not self.weekend <= set(range(7)):
            raise ValueError("weekend: weekday numbers 0 (Monday) to 6 (Sunday), at most 5")
        self.closures = dict(closures or {})

    @cached_property
    def description(self) -> str:
        where = self.country or "no public holidays"
        if self.subdivision:
            where += f"-{self.subdivision}"
        return f"{where}, {self.timezone}"

    # -- days ------------------------------------------------------------------------------

    def holiday(self, day: date) -> str | None:
        """The name of the holiday or closure on ``day``, if any."""
        if day in self.closures:
            return self.closures[day]
        if self._holidays is not None and day in self._holidays:
            name: str = self._holidays.get(day)
            return name
        return None

    def is_working_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend and self.holiday(day) is None

    def step_working_days(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (before it when negative); ``day`` itself
        never counts."""
        step = _ONE_DAY if count > 0 else -_ONE_DAY
        left = abs(count)
        while left:
            day += step
            if self.is_working_day(day):
                left -= 1
        return day

    def shift_date(self, day: date, duration: Duration, sign: int) -> date:
        """``day`` moved by ``duration`` forwards (``sign`` 1) or backwards (-1)."""
        n = duration.amount * sign
        match duration.unit:
            case Unit.DAYS:
                return day + timedelta(days=n)
            case Unit.WEEKS:
                return day + timedelta(weeks=n)
            case Unit.MONTHS:
                return add_months(day, n)
            case Unit.YEARS:
                return add_months(day, 12 * n)
            case Unit.WORKING_DAYS:
                return self.step_working_days(day, n)
            case Unit.HOURS:
                raise ValueError("hours are not a date period")

    # -- instants --------------------------------------------------------------------------

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.tz)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def at(self, day: date, clock: time) -> datetime:
        """The UTC instant of a local date and wall-clock time (a time skipped by a daylight
        saving change is taken after the change)."""
        return datetime.combine(day, clock, self.tz).astimezone(UTC)

    def start_of_day(self, day: date) -> datetime:
        return self.at(day, time())

    def end_of_day(self, day: date) -> datetime:
        """When ``day`` is over: the next local midnight, as a UTC instant."""
        return self.start_of_day(day + _ONE_DAY)

    def last_day(self, end: datetime) -> date:
        """The local date that ends at ``end`` (the inverse of :meth:`end_of_day`)."""
        return self.local_date(end - _TICK)

    def shift_instant(self, instant: datetime, duration: Duration, sign: int) -> datetime:
        """``instant`` moved by ``duration`` keeping the local wall-clock time (hours are
        exact). Used for reminders: "2 working days before" is when two working days
        remain."""
        if duration.unit is Unit.HOURS:
            return instant + timedelta(hours=duration.amount * sign)
        local = self.local(instant)
        day = self.shift_date(local.date(), duration, sign)
        return self.at(day, local.time())
