"""Engagement deadlines reach people: a UPR stakeholder submission reminds the members who
write it, and its miss reaches the head, through the scheduler, the outbox and the bundled
templates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import yaml
from notify_helpers import rows

from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.templates import TemplateSet
from opcatflow.workflows import BUNDLED, registry

PEOPLE = {
    "people": [
        {"id": "a.diallo", "name": "Awa Diallo", "email": "a.diallo@npm.example",
         "locale": "fr", "roles": ["member"]},
        {"id": "r.haddad", "name": "Rania Haddad", "email": "r.haddad@npm.example",
         "locale": "en", "roles": ["head"]},
    ]
}  # fmt: skip
SESSION = {"cycle": 5, "session_number": 54, "session_start": "2027-01-25"}


def on(clock: FrozenClock, day: str) -> None:
    clock.set(datetime.fromisoformat(day + "T09:00:00+00:00"))


def open_engine(db_url: str, clock: FrozenClock, settings: Settings | None = None) -> Engine:
    hooks = [OutboxWriter(parse_directory(yaml.safe_dump(PEOPLE), "<directory>"))]
    on(clock, "2026-03-02")
    return Engine.open(db_url, [BUNDLED], registry, clock=clock, hooks=hooks, settings=settings)


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with open_engine(db_url, clock) as eng:
        yield eng


def sent(engine: Engine) -> list[tuple[str, str]]:
    return sorted((m.event, m.recipient) for m in rows(engine))


def test_a_stakeholder_submission_reminds_the_members_and_a_miss_reaches_the_head(
    engine: Engine, clock: FrozenClock
) -> None:
    cycle = engine.start("upr_cycle", actor="a.diallo", role="member", data=SESSION).id
    # Due at the end of 25 July 2026 (6 months before a January session); reminded 30 days
    # before, so nothing yet on 20 June, a reminder by 30 June.
    on(clock, "2026-06-20")
    Scheduler(engine).tick()
    assert sent(engine) == []
    on(clock, "2026-06-30")
    Scheduler(engine).tick()
    assert sent(engine) == [("upr_cycle.reminder.stakeholder_submission", "a.diallo")]
    [reminder] = rows(engine)
    rendered = TemplateSet().render(
        "deadline_reminder", reminder.payload["locale"], reminder.payload["context"]
    )
    assert "Stakeholder submission to OHCHR" in rendered.subject
    assert "2026-07-25" in rendered.subject  # the last day, not the instant after it
    on(clock, "2026-07-27")
    Scheduler(engine).tick()
    assert sent(engine) == [
        ("upr_cycle.overdue.stakeholder_submission", "a.diallo"),  # its overdue alert
        ("upr_cycle.overdue.stakeholder_submission", "r.haddad"),
        ("upr_cycle.reminder.stakeholder_submission", "a.diallo"),
    ]
    assert engine.get(cycle).state == "preparing"


def test_a_submission_sent_in_time_is_never_reported_missed(
    engine: Engine, clock: FrozenClock
) -> None:
    cycle = engine.start("upr_cycle", actor="a.diallo", role="member", data=SESSION).id
    on(clock, "2026-07-01")
    Scheduler(engine).tick()
    engine.fire(
        cycle, "submit", actor="r.haddad", role="head", data={"submission_reference": "S-1"}
    )
    on(clock, "2026-08-01")
    Scheduler(engine).tick()
    assert [event for event, _ in sent(engine)] == ["upr_cycle.reminder.stakeholder_submission"]


def test_a_message_says_the_last_day_in_the_npms_time_zone(db_url: str, clock: FrozenClock) -> None:
    # Mexico City is six hours behind UTC: the period ends at local midnight, 06:00 UTC on
    # 26 July, and its last day is still 25 July there.
    settings = Settings.from_text("calendar: {timezone: America/Mexico_City}\n")
    with open_engine(db_url, clock, settings) as engine:
        engine.start("upr_cycle", actor="a.diallo", role="member", data=SESSION)
        on(clock, "2026-07-01")
        Scheduler(engine).tick()
        [reminder] = rows(engine)
    event = reminder.payload["context"]["event"]
    assert (event["due_at"], event["due_on"]) == ("2026-07-26T06:00:00+00:00", "2026-07-25")
    text = TemplateSet().render("deadline_reminder", "fr", reminder.payload["context"]).text
    assert "2026-07-25" in text


def test_an_april_may_submission_is_due_7_months_before_and_reminds_the_members(
    engine: Engine, clock: FrozenClock
) -> None:
    # 7 months before Monday 3 May 2027: the end of 3 October 2026; reminded 30 days before,
    # so nothing yet on 2 September, a reminder by 4 September.
    data = {"cycle": 5, "session_number": 55, "session_start": "2027-05-03"}
    engine.start("upr_cycle", actor="a.diallo", role="member", data=data)
    on(clock, "2026-09-02")
    Scheduler(engine).tick()
    assert sent(engine) == []
    on(clock, "2026-09-04")
    Scheduler(engine).tick()
    assert sent(engine) == [("upr_cycle.reminder.stakeholder_submission_apr_may", "a.diallo")]
    [reminder] = rows(engine)
    assert reminder.payload["context"]["event"]["due_on"] == "2026-10-03"
