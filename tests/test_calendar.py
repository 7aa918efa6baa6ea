"""Due-date arithmetic in the NPM's calendar: working days, month ends, time zones, anchors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from opcatflow.engine import Registry, compile_text
from opcatflow.engine.calendar import WorkingCalendar, add_months
from opcatflow.engine.deadlines import DeadlinePlanner
from opcatflow.engine.durations import Duration, Unit, parse_due, parse_period
from opcatflow.engine.settings import Settings

CASEFILE = Path(__file__).parent / "definitions" / "deadlines" / "casefile.yaml"
PARIS = WorkingCalendar("Europe/Paris", "FR")
WD = Unit.WORKING_DAYS


def paris_settings() -> Settings:
    return Settings.from_text("calendar: {timezone: Europe/Paris, country: FR}\n", "npm.yaml")


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (date(2026, 3, 2), 10, date(2026, 3, 16)),  # two weekends skipped
        (date(2026, 4, 30), 1, date(2026, 5, 4)),  # 1 May (Fête du Travail), then the weekend
        (date(2026, 3, 6), 1, date(2026, 3, 9)),  # Friday -> Monday
        (date(2026, 3, 7), 1, date(2026, 3, 9)),  # a Saturday start never counts
        (date(2026, 5, 4), -1, date(2026, 4, 30)),  # backwards over the same holiday
        (date(2026, 12, 24), 1, date(2026, 12, 28)),  # Christmas, then the weekend
    ],
)
def test_working_days_skip_weekends_and_french_holidays(
    start: date, count: int, expected: date
) -> None:
    assert PARIS.step_working_days(start, count) == expected


def test_a_subdivision_adds_its_own_holidays() -> None:
    moselle = WorkingCalendar("Europe/Paris", "FR", "57")  # Alsace-Moselle keeps 26 December
    assert PARIS.is_working_day(date(2025, 12, 26))
    assert not moselle.is_working_day(date(2025, 12, 26))


def test_closures_and_a_country_weekend() -> None:
    office = WorkingCalendar("UTC", closures={date(2026, 3, 3): "Staff retreat"})
    assert office.step_working_days(date(2026, 3, 2), 1) == date(2026, 3, 4)
    assert office.holiday(date(2026, 3, 3)) == "Staff retreat"
    friday_saturday = WorkingCalendar("UTC", weekend=[4, 5])
    assert friday_saturday.step_working_days(date(2026, 3, 5), 1) == date(2026, 3, 8)  # Thu -> Sun


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 8, 15), 7, date(2027, 3, 15)),
    ],
)
def test_months_clamp_to_the_end_of_a_shorter_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_a_date_period_falls_due_at_the_end_of_its_last_day_in_the_npm_time_zone() -> None:
    # 9 March is the last day: the deadline is overdue at midnight in Paris (23:00 UTC)
    assert PARIS.end_of_day(date(2026, 3, 9)) == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    # after the change to summer time, Paris midnight is 22:00 UTC
    assert PARIS.end_of_day(date(2026, 4, 1)) == datetime(2026, 4, 1, 22, 0, tzinfo=UTC)
    assert PARIS.last_day(datetime(2026, 3, 9, 23, 0, tzinfo=UTC)) == date(2026, 3, 9)


def test_reminders_keep_the_local_wall_clock_and_count_working_days_left() -> None:
    due = PARIS.end_of_day(date(2026, 3, 16))  # Monday
    two_wd = PARIS.shift_instant(due, Duration(2, WD), -1)
    assert PARIS.local(two_wd).replace(tzinfo=None) == datetime(2026, 3, 13, 0, 0)  # Fri, Mon left
    hours = PARIS.shift_instant(due, Duration(2, Unit.HOURS), -1)
    assert due - hours == timedelta(hours=2)


def test_unknown_time_zone_country_or_subdivision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        WorkingCalendar("Mars/Olympus")
    with pytest.raises(ValueError, match="XX"):
        WorkingCalendar("UTC", "XX")
    with pytest.raises(ValueError, match="subdivision"):
        WorkingCalendar("UTC", "FR", "ZZ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 working days", Duration(10, WD)),
        ("3 wd", Duration(3, WD)),
        ("1 month", Duration(1, Unit.MONTHS)),
        ("config:visit.factual_check", "config:visit.factual_check"),
    ],
)
def test_periods_parse(text: str, expected: object) -> None:
    parsed = parse_period(text)
    assert (str(parsed) if isinstance(expected, str) else parsed) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10 workdays", "malformed duration"),
        ("0 days", "at least 1"),
        ("200 years", "longer than a century"),
        ("3 days before entered", "before the state is entered"),
        ("config:Visit", "malformed settings key"),
        ("soon after session_start", "malformed duration"),
    ],
)
def test_bad_expressions_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_due(text)


class TestPlanner:
    """Due instants of the test workflow's deadlines, entered on Monday 2 March 2026 09:00 UTC."""

    entered = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def setup_method(self) -> None:
        self.wf = compile_text(CASEFILE.read_text(), str(CASEFILE), Registry())
        self.planner = DeadlinePlanner(paris_settings())
        self.states = self.wf.definition.states

    def due(self, deadline: str, **data: object) -> datetime | None:
        spec = next(d for d in self.states["open"].deadlines if d.id == deadline)
        return self.planner.due(self.wf, spec, entered=self.entered, data=data)

    def test_working_days_after_entry(self) -> None:
        assert self.due("reply") == datetime(2026, 3, 16, 23, 0, tzinfo=UTC)  # end of Mon 16

    def test_months_before_a_date_field(self) -> None:
        # 7 months before 1 December is 1 May, a holiday: the date stands, it is not moved
        assert self.due("submission", session_start="2026-12-01") == datetime(
            2026, 5, 1, 22, 0, tzinfo=UTC
        )

    def test_an_empty_anchor_arms_nothing(self) -> None:
        assert self.due("submission") is None

    def test_a_published_date_replaces_the_computed_one(self) -> None:
        published = self.due("submission", session_start="2026-12-01", published_due="2026-05-12")
        assert published == datetime(2026, 5, 12, 22, 0, tzinfo=UTC)

    def test_a_repeating_check_comes_round_from_the_day_it_was_met(self) -> None:
        spec = next(d for d in self.states["open"].deadlines if d.id == "check")
        assert self.due("check") == datetime(2026, 4, 1, 22, 0, tzinfo=UTC)  # end of 1 April
        # met late, on 10 April (Paris): the next 30 days count from that day
        nxt = self.planner.next_due(spec, datetime(2026, 4, 10, 8, 0, tzinfo=UTC))
        assert nxt == datetime(2026, 5, 10, 22, 0, tzinfo=UTC)  # end of 10 May
        # met early, on 20 March: from 20 March, not from its due date
        early = self.planner.next_due(spec, datetime(2026, 3, 20, 8, 0, tzinfo=UTC))
        assert early == datetime(2026, 4, 19, 22, 0, tzinfo=UTC)

    def test_hours_are_exact_across_a_daylight_saving_change(self) -> None:
        spec = self.states["escalated"].deadlines[0]  # 24 hours
        entered = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Paris changes clocks on 29 March
        due = self.planner.due(self.wf, spec, entered=entered, data={})
        assert due == datetime(2026, 3, 29, 12, 0, tzinfo=UTC)

    def test_reminders_still_ahead_only(self) -> None:
        spec = self.states["open"].deadlines[0]
        due = self.due("reply")
        assert due is not None
        planned = self.planner.timers(spec, due, now=self.entered, occurrence=1, obligation_id=7)
        reply = [(p.kind, p.offset, p.due_at, p.obligation_id) for p in planned]
        assert reply == [
            ("reminder", "2 working days", datetime(2026, 3, 12, 23, 0, tzinfo=UTC), 7),
            ("reminder", "1 day", datetime(2026, 3, 15, 23, 0, tzinfo=UTC), 7),
            ("due", None, datetime(2026, 3, 16, 23, 0, tzinfo=UTC), 7),
        ]
        late = self.planner.timers(
            spec, due, now=datetime(2026, 3, 14, tzinfo=UTC), occurrence=1, obligation_id=7
        )
        assert [p.offset for p in late] == ["1 day", None]
