"""A UPR cycle as it actually runs (issue 22), on both backends, with a fresh engine for every
step: a review postponed after the submission and rescheduled without asking for it again,
a cycle where only the review day was ever entered, OHCHR's published dates with their
source. Dates computed by hand in the comments.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from casework import HEAD, MEMBER, Desk
from registerkit import HEALTH

from opcatflow.adapters.cli.calendar import engagement_calendar
from opcatflow.engine import FrozenClock


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def on(desk: Desk, day: str) -> None:
    desk.clock.set(datetime.fromisoformat(day + "T09:00:00+00:00"))


def obligations(desk: Desk, cycle: str) -> dict[str, tuple[str, date | None]]:
    """Every obligation of the cycle (the latest occurrence), with its status and last day."""
    with desk.engine() as eng:
        rows = sorted(eng.obligations(cycle), key=lambda o: o.occurrence)
    return {o.deadline: (str(o.status), o.last_day) for o in rows}


def test_a_review_postponed_after_the_submission_does_not_ask_for_it_again(desk: Desk) -> None:
    on(desk, "2026-03-02")
    cycle = desk.start(
        "upr_cycle", MEMBER, {"cycle": 5, "session_number": 55, "session_start": "2027-05-03"}
    )
    # An April/May session: about 7 months before, 3 October 2026 (not 6 months any more).
    assert obligations(desk, cycle)["stakeholder_submission_apr_may"] == (
        "pending",
        date(2026, 10, 3),
    )
    on(desk, "2026-09-20")
    desk.fire(cycle, "submit", HEAD, {"submission_reference": "NPM-UPR5"})
    on(desk, "2027-03-01")
    desk.fire(cycle, "postpone", MEMBER, {"postponement_reason": "moved to the autumn"})
    moved = desk.fire(cycle, "reschedule", MEMBER, {"session_start": "2027-11-01"})
    assert moved.state == "submitted"  # the submission stands; nothing is asked again
    # Met stays met; no October/November submission is owed; the State's report and the
    # documents count from 1 November 2027: 12 weeks (9 August) and 6 weeks (20 September).
    assert obligations(desk, cycle) == {
        "stakeholder_submission_apr_may": ("met", date(2026, 10, 3)),
        "national_report": ("pending", date(2027, 8, 9)),
        "documents_public": ("pending", date(2027, 9, 20)),
    }
    desk.verify()


def test_only_the_review_day_anchors_what_follows(desk: Desk) -> None:
    # The cycle opened by the previous one: its session is an estimate that never got entered.
    on(desk, "2031-01-10")
    cycle = desk.start(
        "upr_cycle",
        MEMBER,
        {"cycle": 6, "session_start": "2032-05-03", "session_start_estimated": True},
    )
    desk.fire(cycle, "submit", HEAD, {"submission_reference": "NPM-UPR6"})
    on(desk, "2031-11-12")
    desk.fire(cycle, "open_dialogue", MEMBER)
    held = desk.fire(cycle, "hold_review", MEMBER, {"review_held_on": "2031-11-12"}).data
    # The day held replaces the estimate and sets the season: an October/November review is
    # adopted in March 2032, the Monday on or after 24 February: 1 March 2032.
    assert (held["review_on"], held["review_on_estimated"], held["session_season"]) == (
        "2031-11-12",
        False,
        "oct_nov",
    )
    assert (held["hrc_session_start"], held["hrc_session_start_estimated"]) == ("2032-03-01", True)
    on(desk, "2031-11-15")
    desk.fire(
        cycle,
        "record_report",
        MEMBER,
        {"report_adopted_on": "2031-11-15", "recommendations": ["Fund the NPM"]},
    )
    # The State's responses: 14 days before 1 March 2032, 16 February 2032, after the review
    # (the estimated May session would have put them in August 2032).
    assert obligations(desk, cycle)["state_responses"] == ("pending", date(2032, 2, 16))
    on(desk, "2032-03-10")
    desk.fire(
        cycle,
        "adopt_outcome",
        HEAD,
        {"outcome_adopted_on": "2032-03-10", "recommendations_addressee": HEALTH},
    )
    # Two years after the review day: 12 November 2033.
    assert obligations(desk, cycle)["mid_term_report"] == ("pending", date(2033, 11, 12))
    on(desk, "2033-12-01")
    closed = desk.fire(cycle, "close_cycle", HEAD).data
    # The next review about five years after this one, in the same season: the Monday on or
    # after 3 November 2036, 3 November 2036 (a Monday).
    assert closed["next_session_start"] == "2036-11-03"


def test_ohchr_dates_are_published_dates_with_their_source(desk: Desk) -> None:
    on(desk, "2026-03-02")
    cycle = desk.start(
        "upr_cycle",
        MEMBER,
        {
            "cycle": 5,
            "session_start": "2027-01-25",
            "session_start_source": "https://www.ohchr.org/en/hr-bodies/upr/sessions",
        },
    )
    ohchr = "https://www.ohchr.org/en/hr-bodies/upr/upr-54-stakeholders"
    desk.fire(
        cycle,
        "record_stakeholder_deadline",
        MEMBER,
        {
            "stakeholder_deadline": "2026-07-15",
            "stakeholder_deadline_source": ohchr,
            "stakeholder_portal_opens_on": "2026-06-01",
            "national_report_deadline": "2026-10-19",
            "national_report_deadline_source": "OHCHR note verbale of 2026-02-10",
        },
    )
    assert obligations(desk, cycle) == {
        "stakeholder_submission": ("pending", date(2026, 7, 15)),
        "national_report": ("pending", date(2026, 10, 19)),
    }
    with desk.engine() as eng:
        rules = {
            e.deadline: (r.text, r.source)
            for e, r in engagement_calendar(eng, start=None, end=None, now=desk.clock.now())
        }
    assert rules == {
        "stakeholder_submission": (
            "published date (stakeholder submission deadline published by OHCHR)",
            ohchr,
        ),
        "national_report": (
            "published date (national report deadline published by OHCHR)",
            "OHCHR note verbale of 2026-02-10",
        ),
    }
    # A submission dated before the portal opened is recorded, with a notice to check it.
    with desk.engine() as eng:
        sent = eng.fire_result(
            cycle,
            "submit",
            actor=HEAD[0],
            role=HEAD[1],
            data={"submission_reference": "NPM-UPR5", "submitted_on": "2026-05-20"},
        )
    assert sent.instance.state == "submitted"
    assert sent.notices == (
        "submitted_on 2026-05-20 is before the stakeholder portal opened (2026-06-01): "
        "check the date",
    )
