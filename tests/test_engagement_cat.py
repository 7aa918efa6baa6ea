"""A CAT cycle as it actually runs (issue 22), on both backends, with a fresh engine for every
step: a report due "in 2019" (a year only), the State's follow-up reply early or late (through
the scheduler and the outbox), a session moved with only its new first day, session dates in
order, the rapporteur's letters. Every date below is computed by hand in the comments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pytest
import registerkit
import yaml
from casework import catalog
from notify_helpers import rows
from typer.testing import CliRunner

from opcatflow.adapters.cli.app import app
from opcatflow.adapters.cli.calendar import engagement_calendar
from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.engine.errors import InvalidData
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.stores import SQLAlchemyStore
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.workflows import registry

PEOPLE = {
    "people": [
        {"id": "a.diallo", "name": "Awa Diallo", "email": "a.diallo@npm.example",
         "locale": "en", "roles": ["member"]},
        {"id": "r.haddad", "name": "Rania Haddad", "email": "r.haddad@npm.example",
         "locale": "en", "roles": ["head"]},
    ]
}  # fmt: skip
MEMBER = {"actor": "a.diallo", "role": "member"}
HEAD = {"actor": "r.haddad", "role": "head"}
LIAISON = {"actor": "l.moreau", "role": "liaison"}


class Desk:
    """One database; every call opens a fresh engine (what was saved is what is read)."""

    def __init__(self, db_url: str, clock: FrozenClock) -> None:
        self.url, self.clock = db_url, clock
        store = SQLAlchemyStore(db_url)
        store.ensure_schema()
        store.close()
        with self.engine() as eng:
            registerkit.seed_authorities(eng)  # the recommendations' addressee

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        hooks = [OutboxWriter(parse_directory(yaml.safe_dump(PEOPLE), "<directory>"))]
        # the bundled catalogue compiled once (casework.catalog), the store opened afresh
        with Engine(
            SQLAlchemyStore(self.url), catalog(), registry, clock=self.clock, hooks=hooks
        ) as eng:
            yield eng

    def on(self, day: str) -> None:
        self.clock.set(datetime.fromisoformat(day + "T09:00:00+00:00"))

    def start(self, who: dict[str, str], **data: Any) -> str:
        with self.engine() as eng:
            return eng.start("cat_cycle", data=data, **who).id

    def fire(self, cycle: str, trigger: str, who: dict[str, str], **data: Any) -> Any:
        with self.engine() as eng:
            return eng.fire_result(cycle, trigger, data=data or None, **who)

    def data(self, cycle: str) -> dict[str, Any]:
        with self.engine() as eng:
            return dict(eng.get(cycle).data)

    def tick(self) -> None:
        with self.engine() as eng:
            Scheduler(eng).tick()

    def obligation(self, cycle: str, deadline: str) -> Any:
        """The latest occurrence (a state entered again starts another)."""
        with self.engine() as eng:
            found = [o for o in eng.obligations(cycle) if o.deadline == deadline]
        return max(found, key=lambda o: o.occurrence)

    def alerts(self, deadline: str) -> list[tuple[str, str]]:
        with self.engine() as eng:
            return sorted(
                (m.instance_id, m.recipient)
                for m in rows(eng)
                if m.event == f"cat_cycle.overdue.{deadline}"
            )


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def to_follow_up(desk: Desk) -> str:
    """A cycle examined in the session of 22 April - 17 May 2030: the follow-up (the NPM's
    and the State's) is due one year after that session's last day, 17 May 2031."""
    desk.on("2030-01-06")
    cycle = desk.start(MEMBER, cycle=8, procedure="simplified")
    desk.fire(cycle, "skip_loi_information", HEAD)
    desk.fire(cycle, "record_state_report", LIAISON, state_report_received_on="2029-11-20")
    desk.fire(
        cycle,
        "record_dates",
        MEMBER,
        cat_session_start="2030-04-22",
        cat_session_last_day="2030-05-17",
        cat_session_start_source="CAT/C/79/1",
    )
    desk.fire(cycle, "send_information", HEAD)
    desk.on("2030-04-23")
    desk.fire(cycle, "attend_examination", MEMBER, examination_on="2030-04-23")
    desk.fire(
        cycle,
        "record_observations",
        HEAD,
        observations_adopted_on="2030-05-10",
        recommendations=["Record all injuries"],
        recommendations_addressee=registerkit.AUTHORITY,
    )
    desk.fire(cycle, "send_followup_information", HEAD)  # the NPM's part, on time
    return cycle


def test_the_states_follow_up_reply_met_early_or_late_from_the_obligation(desk: Desk) -> None:
    early, late = to_follow_up(desk), to_follow_up(desk)
    for cycle in (early, late):
        assert desk.obligation(cycle, "state_followup_reply").last_day == date(2031, 5, 17)
    # 30 days before the last day: met early, never alerted.
    desk.on("2031-04-18")
    desk.fire(early, "record_state_followup_reply", LIAISON, state_followup_reply_on="2031-04-17")
    met = desk.obligation(early, "state_followup_reply")
    assert (str(met.status), met.days_late, met.met_by) == (
        "met",
        0,
        "field:state_followup_reply_on",
    )
    assert (met.last_day - met.met_at.date()).days == 30  # 30 days early
    # The other one is overdue from 18 May 2031: one alert to the head, then none until met.
    desk.on("2031-05-18")
    desk.tick()
    for day in ("2031-06-20", "2031-08-01", "2031-08-15"):
        desk.on(day)
        desk.tick()
    assert desk.alerts("state_followup_reply") == [(late, "r.haddad")]
    # 17 May + 90 days = 15 August 2031 (14 days of May, 30 of June, 31 of July, 15 of August).
    desk.on("2031-08-16")
    desk.fire(
        late,
        "record_state_followup_reply",
        LIAISON,
        state_followup_reply_on="2031-08-15",
        state_followup_reply_symbol="CAT/C/XXX/FCO/8",
    )
    met = desk.obligation(late, "state_followup_reply")
    assert (str(met.status), met.days_late) == ("met", 90)
    desk.on("2031-12-01")
    desk.tick()
    assert desk.alerts("state_followup_reply") == [(late, "r.haddad")]  # still exactly one
    # The rapporteur's answer, numbered by the engine.
    desk.fire(
        late,
        "record_rapporteur_letter",
        MEMBER,
        rapporteur_letters={"append": [{"sent_on": "2031-11-20", "symbol": "CAT/FU/2031/1"}]},
    )
    [letter] = desk.data(late)["rapporteur_letters"]
    assert (letter["number"], letter["sent_on"]) == (1, "2031-11-20")


def test_a_session_moved_with_only_its_new_first_day(desk: Desk) -> None:
    desk.on("2030-01-06")
    cycle = desk.start(MEMBER, cycle=8, procedure="simplified", loipr_issued_on="2027-06-04")
    desk.fire(cycle, "skip_loi_information", HEAD)
    desk.fire(cycle, "record_state_report", LIAISON, state_report_received_on="2029-11-20")
    # A last day before the first day is refused, not stored to anchor the follow-up.
    with pytest.raises(TransitionRefused, match="last day is before its first day"):
        desk.fire(
            cycle,
            "record_dates",
            MEMBER,
            cat_session_start="2030-04-22",
            cat_session_last_day="2030-04-12",
        )
    desk.fire(cycle, "record_dates", MEMBER, cat_session_start="2030-04-22")
    data = desk.data(cycle)  # no last day given: four weeks, Monday 22 April - Friday 17 May
    assert (data["cat_session_last_day"], data["cat_session_last_day_estimated"]) == (
        "2030-05-17",
        True,
    )
    desk.fire(cycle, "postpone", HEAD, postponement_reason="moved by the Committee")
    data = desk.data(cycle)
    assert (data.get("cat_session_last_day"), data.get("cat_session_last_day_estimated")) == (
        None,
        None,
    )
    # Only the new first day is published: 8 July 2030; its last day is estimated 2 August.
    moved = desk.fire(cycle, "reschedule", MEMBER, cat_session_start="2030-07-08")
    assert moved.notices == ()
    data = desk.data(cycle)
    assert (data["cat_session_last_day"], data["cat_session_last_day_estimated"]) == (
        "2030-08-02",
        True,
    )
    # Written information: 8 weeks before Monday 8 July 2030 is Monday 13 May 2030.
    assert desk.obligation(cycle, "examination_information").last_day == date(2030, 5, 13)
    # A first day on a Saturday is recorded with a notice (sessions open on a working day).
    saturday = desk.fire(cycle, "record_dates", MEMBER, cat_session_start="2030-07-06")
    assert saturday.notices == (
        "cat_session_start 2030-07-06 is a Saturday: sessions open on a working day, "
        "check the date",
    )
    data = desk.data(cycle)  # still an estimate: it follows the first day
    assert (data["cat_session_last_day"], data["cat_session_last_day_estimated"]) == (
        "2030-07-31",
        True,
    )
    desk.fire(cycle, "record_dates", MEMBER, cat_session_start="2030-07-08")
    desk.fire(cycle, "record_dates", MEMBER, cat_session_last_day="2030-08-01")
    data = desk.data(cycle)
    assert (data["cat_session_last_day"], data["cat_session_last_day_estimated"]) == (
        "2030-08-01",
        False,
    )
    assert data["loipr_issued_on"] == "2027-06-04"
    # An entered last day stays when the first day is corrected, and order is still checked.
    with pytest.raises(TransitionRefused, match="last day is before its first day"):
        desk.fire(cycle, "record_dates", MEMBER, cat_session_start="2030-08-05")


def test_a_report_due_in_2019_is_owed_to_the_end_of_2019_and_shown_as_2019(
    desk: Desk, db_url: str
) -> None:
    desk.on("2019-03-01")
    cycle = desk.start(
        MEMBER,
        cycle=7,
        procedure="standard",
        report_due_published="2019",
        report_due_published_source="CAT/C/XXX/CO/6, para. 46",
    )
    report = desk.obligation(cycle, "periodic_report")
    assert report.last_day == date(2019, 12, 31)
    result = CliRunner().invoke(app, ["--db", db_url, "calendar", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["deadline"], row["due_shown"], row["last_day"], row["source"]) == (
        "periodic_report",
        "2019",
        "2019-12-31",
        "CAT/C/XXX/CO/6, para. 46",
    )
    table = CliRunner().invoke(app, ["--db", db_url, "calendar"])
    assert "2019 " in table.stdout
    assert "CAT/C/XXX/CO/6, para. 46" in table.stdout
    # A month narrows it: due at the end of November 2019.
    desk.fire(cycle, "record_dates", MEMBER, report_due_published="2019-11")
    assert desk.obligation(cycle, "periodic_report").last_day == date(2019, 11, 30)
    with pytest.raises(TransitionRefused, match="a month"):
        desk.fire(cycle, "record_dates", MEMBER, report_due_published="2019-13")
    # A field that takes no partial date says so.
    with pytest.raises(TransitionRefused, match="takes no partial dates"):
        desk.fire(cycle, "record_dates", MEMBER, loipr_issued_on="2019")
    desk.fire(cycle, "skip_loi_information", HEAD)
    desk.on("2020-03-11")
    desk.fire(cycle, "record_state_report", LIAISON, state_report_received_on="2020-03-10")
    # 30 November 2019 -> 10 March 2020: 31 days of December, 31 of January, 29 of February
    # (2020 is a leap year), 10 of March.
    assert desk.obligation(cycle, "periodic_report").days_late == 101


def test_a_start_with_a_malformed_partial_date_is_refused_whole(desk: Desk) -> None:
    desk.on("2019-03-01")
    with pytest.raises(InvalidData, match="report_due_published"):
        desk.start(MEMBER, cycle=7, report_due_published="19")


def test_a_follow_up_counted_from_an_estimated_last_day_says_so(desk: Desk) -> None:
    desk.on("2030-01-06")
    cycle = desk.start(MEMBER, cycle=8, procedure="simplified")
    desk.fire(cycle, "skip_loi_information", HEAD)
    desk.fire(cycle, "record_state_report", LIAISON, state_report_received_on="2029-11-20")
    desk.fire(cycle, "record_dates", MEMBER, cat_session_start="2030-04-22")
    desk.fire(cycle, "send_information", HEAD)
    desk.fire(cycle, "attend_examination", MEMBER, examination_on="2030-04-23")
    desk.fire(
        cycle,
        "record_observations",
        HEAD,
        observations_adopted_on="2030-05-10",
        recommendations=["Record all injuries"],
        recommendations_addressee=registerkit.AUTHORITY,
    )
    assert desk.data(cycle)["observations_session_last_day_estimated"] is True
    with desk.engine() as eng:
        rules = {
            e.deadline: r
            for e, r in engagement_calendar(eng, start=None, end=None, now=desk.clock.now())
        }
    # One year after the estimated 17 May 2030, flagged as counted from an estimate.
    assert rules["followup_information"].estimate is True
    assert rules["followup_information"].text.endswith("of 2030-05-17 (estimated)")
    # The Committee's programme gives 16 May: entered, the flag goes and the date moves.
    desk.fire(cycle, "record_dates", MEMBER, observations_session_last_day="2030-05-16")
    assert desk.data(cycle)["observations_session_last_day_estimated"] is False
    assert desk.obligation(cycle, "followup_information").last_day == date(2031, 5, 16)
