"""A date a rule writes (acknowledged on, decided on, the day of an escalation) is the day in
the NPM's time zone, not in UTC: an NPM east of UTC acknowledging a complaint just after its
midnight records its own date. On both backends."""

from __future__ import annotations

import pytest
from casework import COMPLAINT, INTAKE, Desk

from opcatflow.engine import FrozenClock
from opcatflow.engine.settings import Settings

# The fixture clock starts at 2026-03-02 09:00 UTC: 22:00 of that day in Auckland (UTC+13).
AUCKLAND = Settings.from_text("calendar: {timezone: Pacific/Auckland}\n", "npm.yaml")
BY_EMAIL = {**COMPLAINT, "channel": "email"}


@pytest.mark.parametrize(("settings", "day"), [(AUCKLAND, "2026-03-03"), (None, "2026-03-02")])
def test_an_acknowledgement_is_dated_in_the_npm_s_time_zone(
    db_url: str, clock: FrozenClock, settings: Settings | None, day: str
) -> None:
    desk = Desk(db_url, clock, settings)
    desk.later(hours=1)  # 10:00 UTC, 23:00 in Auckland
    found = desk.start("complaint", INTAKE, BY_EMAIL)
    acknowledged = desk.fire(found, "acknowledge", INTAKE)  # an hour later: 3 March there
    assert acknowledged.data["acknowledged_on"] == day
