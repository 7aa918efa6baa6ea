"""An SPT visit as it actually runs (issue 22), on both backends, with a fresh engine for
every step: the reports, the replies and their publication recorded in any order years
apart, a visit that ends part-way with a partial report, dates corrected after the fact with
their source, the SPT's confidential recommendations. Dates computed by hand in comments.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from casework import COORDINATOR, HEAD, LIAISON, Desk
from registerkit import AUTHORITY, PLACE, POLICE

from opcatflow.adapters.cli.calendar import engagement_calendar
from opcatflow.engine import FrozenClock


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def on(desk: Desk, day: str) -> None:
    desk.clock.set(datetime.fromisoformat(day + "T09:00:00+00:00"))


def last_days(desk: Desk, visit: str) -> dict[str, date]:
    """The open obligations of the visit, by deadline, with their last day."""
    with desk.engine() as eng:
        return {
            o.deadline: o.last_day
            for o in eng.obligations(visit)
            if str(o.status) in ("pending", "due") and o.last_day is not None
        }


def visited(desk: Desk) -> str:
    """A country visit of 8-19 March 2027, ended normally."""
    on(desk, "2027-02-01")
    visit = desk.start(
        "spt_visit",
        COORDINATOR,
        {
            "visit_kind": "country",
            "visit_starts_on": "2027-03-08",
            "visit_starts_on_source": "https://www.ohchr.org/en/press-releases/spt-2027",
        },
    )
    desk.fire(visit, "send_information", COORDINATOR, {"information_topics": ["places"]})
    on(desk, "2027-03-08")
    desk.fire(visit, "start_visit", COORDINATOR)
    on(desk, "2027-03-19")
    ended = {"visit_ends_on": "2027-03-19", "places_seen": [PLACE]}
    desk.fire(visit, "end_visit", COORDINATOR, ended)
    return visit


def test_the_reports_and_replies_come_in_any_order_years_apart(desk: Desk) -> None:
    visit = visited(desk)
    desk.fire(visit, "press_for_publication", HEAD)
    # The SPT's report to the NPM first: the NPM's reply is due 6 months later, 1 January 2028.
    on(desk, "2027-07-02")
    desk.fire(visit, "record_npm_report", HEAD, {"npm_report_transmitted_on": "2027-07-01"})
    assert last_days(desk, visit) == {"npm_reply": date(2028, 1, 1)}
    desk.fire(visit, "send_npm_reply", HEAD, {"npm_reply_sent_on": "2027-09-01"})
    # Closing needs the report to the State, which has not come yet.
    refusal = desk.refused(visit, "close", HEAD, {"outcome": "done"})
    assert "the SPT's report to the State" in refusal.reason
    # Then the report to the State (after the NPM's, in the same state): the State's reply is
    # due 6 months after 15 August 2027, on 15 February 2028.
    on(desk, "2027-08-20")
    desk.fire(
        visit,
        "record_report_transmitted",
        HEAD,
        {
            "report_transmitted_on": "2027-08-15",
            "report_transmitted_on_source": "SPT press release of 2027-08-16",
        },
    )
    assert last_days(desk, visit) == {"state_reply": date(2028, 2, 15)}
    with desk.engine() as eng:
        [(entry, rule)] = engagement_calendar(eng, start=None, end=None, now=desk.clock.now())
    assert (entry.deadline, rule.source) == ("state_reply", "SPT press release of 2027-08-16")
    assert rule.text == (
        "6 months [config:spt.state_reply] after the SPT report transmitted to the State on "
        "of 2027-08-15"
    )
    on(desk, "2028-01-21")
    desk.fire(visit, "record_state_reply", LIAISON, {"state_reply_on": "2028-01-20"})
    assert desk.get(visit).state == "awaiting_publication"
    # Two years later both are public; the report's recommendations are followed once.
    on(desk, "2029-08-21")
    desk.fire(
        visit,
        "report_made_public",
        HEAD,
        {
            "report_published_on": "2029-08-20",
            "report_published_on_source": "CAT/OP/XXX/1",
            "recommendations": ["Close the basement cells"],
            "recommendations_addressee": AUTHORITY,
        },
    )
    desk.fire(
        visit,
        "record_state_reply_published",
        HEAD,
        {
            "state_reply_published_on": "2029-08-20",
            "state_reply_published_on_source": "CAT/OP/XXX/1/Add.1",
        },
    )
    desk.fire(visit, "record_npm_report_published", HEAD, {"npm_report_published_on": "2029-09-03"})
    again = {
        "report_published_on": "2029-08-20",
        "recommendations": ["Close the basement cells"],
        "recommendations_addressee": AUTHORITY,
    }
    refusal = desk.refused(visit, "report_made_public", HEAD, again)
    assert "followed already" in refusal.reason
    assert len([c for c in desk.children(visit) if c.workflow_id == "recommendation"]) == 1
    # The confidential recommendations stay records of the visit: nothing public is opened.
    desk.fire(
        visit,
        "record_confidential_recommendations",
        COORDINATOR,
        {
            "confidential_recommendations": {
                "append": [{"text": "Move the CCTV room", "status": "open"}]
            }
        },
    )
    [kept] = desk.get(visit).data["confidential_recommendations"]
    assert (kept["number"], kept["status"]) == (1, "open")
    assert len([c for c in desk.children(visit) if c.workflow_id == "recommendation"]) == 1
    desk.fire(visit, "close", HEAD, {"outcome": "both reports public"})
    assert desk.get(visit).state == "closed"
    desk.verify()


def test_a_date_is_corrected_in_any_state_with_its_source(desk: Desk) -> None:
    visit = visited(desk)
    desk.fire(visit, "press_for_publication", HEAD)
    fixed = {"visit_starts_on": "2027-03-09", "visit_starts_on_source": "CAT/OP/XXX/1, para. 1"}
    refusal = desk.refused(visit, "correct_dates", COORDINATOR, fixed)
    assert "needs its source" in refusal.reason
    desk.fire(visit, "correct_dates", COORDINATOR, fixed, reason="CAT/OP/XXX/1, para. 1")
    record = desk.history(visit)[-1]
    assert record.reason == "CAT/OP/XXX/1, para. 1"
    assert json.loads(record.changes)["visit_starts_on"] == ["2027-03-08", "2027-03-09"]
    assert desk.get(visit).state == "awaiting_publication"


def test_a_visit_ended_part_way_has_its_partial_report(desk: Desk) -> None:
    on(desk, "2027-02-01")
    visit = desk.start("spt_visit", COORDINATOR, {"visit_kind": "country"})
    desk.fire(visit, "record_dates", COORDINATOR, {"visit_starts_on": "2027-03-08"})
    desk.fire(visit, "send_information", COORDINATOR, {"information_topics": ["places"]})
    on(desk, "2027-03-08")
    desk.fire(visit, "start_visit", COORDINATOR)
    desk.fire(visit, "suspend", HEAD, {"suspension_reason": "access to a prison refused"})
    ended = {
        "visit_ends_on": "2027-03-10",
        "places_seen": [POLICE],
        "ended_early_reason": "the SPT terminated the visit after access was refused",
    }
    desk.fire(visit, "end_early", HEAD, ended)
    assert desk.get(visit).data["partial_visit"] is True
    assert [c.data["place"] for c in desk.children(visit)] == [POLICE]  # a reprisal watch
    # The partial report to the State, 22 April 2027: the reply is due 22 October 2027.
    desk.fire(visit, "record_report_transmitted", HEAD, {"report_transmitted_on": "2027-04-22"})
    assert last_days(desk, visit) == {"state_reply": date(2027, 10, 22)}
    desk.fire(visit, "close", HEAD, {"outcome": "partial report, reply awaited"})
    assert desk.get(visit).state == "closed"
