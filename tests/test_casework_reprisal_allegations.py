"""Several allegations in one reprisal case, each counted from its own received_at (a
datetime: 24 hours mean 24 hours), with a fresh engine between steps, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from casework import CASEWORKER, HEAD, Desk

from opcatflow.engine import FrozenClock
from opcatflow.engine.scheduler import Scheduler


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def allegation(received_at: str, source: str, text: str) -> dict[str, str]:
    return {"received_at": received_at, "source": source, "text": text}


def alerts(desk: Desk, instance_id: str) -> list[tuple[str, str]]:
    with desk.engine() as eng:
        firings = Scheduler(eng).tick().firings
    return [(f.deadline, f.kind) for f in firings if f.instance_id == instance_id]


def focal_point_due(desk: Desk, instance_id: str) -> list[tuple[str, str, str | None]]:
    with desk.engine() as eng:
        rows = [o for o in eng.obligations(instance_id) if o.deadline == "notify_focal_point"]
    return [(o.anchor, o.due_at.astimezone(UTC).isoformat(), o.met_by) for o in rows]


def test_two_allegations_each_get_the_focal_point_told_within_24_hours(
    desk: Desk, clock: FrozenClock
) -> None:
    # entered at 09:00 on 2 March, received by phone at 07:30 that morning
    first = allegation("2026-03-02T07:30:00+00:00", "relative", "Beaten after the visit.")
    case = desk.start(
        "reprisal",
        CASEWORKER,
        {"origin": "npm_visit", "reported_on": "2026-03-02", "allegations": [{"n": 1, **first}]},
    )
    assert desk.get(case).data["received_at"] == "2026-03-02T07:30:00+00:00"
    clock.set(datetime(2026, 3, 3, 7, 45, tzinfo=UTC))
    assert ("notify_focal_point", "due") in alerts(desk, case)
    desk.fire(case, "notify_focal_point", CASEWORKER)
    desk.fire(case, "assess_risk", HEAD, {"risk_level": "high", "risk_assessment": "-"})

    # a second allegation, three days later, from a fellow detainee
    second = allegation("2026-03-06T14:10:00+00:00", "fellow_detainee", "Moved to isolation.")
    again = desk.fire(case, "record_allegation", CASEWORKER, {"allegations": {"append": [second]}})
    assert (again.state, again.data["received_at"]) == ("reported", second["received_at"])
    assert [a["n"] for a in again.data["allegations"]] == [1, 2]
    # the same list again is no new allegation: the case does not bounce back
    desk.fire(case, "notify_focal_point", CASEWORKER)
    unchanged = {"allegations": again.data["allegations"]}
    refused = desk.refused(case, "record_allegation", CASEWORKER, unchanged)
    assert refused.reason == (
        "allegation_appended: no new allegation: append one to allegations (its received_at "
        "and source)"
    )
    assert focal_point_due(desk, case) == [
        ("2026-03-02T07:30:00+00:00", "2026-03-03T07:30:00+00:00", "trigger:notify_focal_point"),
        ("2026-03-06T14:10:00+00:00", "2026-03-07T14:10:00+00:00", "trigger:notify_focal_point"),
    ]
    desk.verify()


def test_the_focal_point_deadline_counts_from_the_second_allegation_when_it_is_late(
    desk: Desk, clock: FrozenClock
) -> None:
    first = allegation("2026-03-02T08:00:00+00:00", "person_concerned", "Threatened.")
    case = desk.start(
        "reprisal",
        CASEWORKER,
        {"origin": "complaint", "reported_on": "2026-03-02", "allegations": [{"n": 1, **first}]},
    )
    desk.fire(case, "notify_focal_point", HEAD)
    second = allegation("2026-03-04T10:00:00+00:00", "lawyer", "Visits from family refused.")
    desk.fire(case, "record_allegation", CASEWORKER, {"allegations": {"append": [second]}})
    clock.set(datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    assert ("notify_focal_point", "due") not in alerts(desk, case)  # 23 hours after
    clock.set(datetime(2026, 3, 5, 10, 30, tzinfo=UTC))
    assert ("notify_focal_point", "due") in alerts(desk, case)  # 24 and a half hours after

    # before the focal point is told, a third allegation received earlier than the last
    # counted one moves the deadline earlier, never later
    third = allegation("2026-03-04T06:00:00+00:00", "staff", "Searched every day since.")
    later = desk.fire(case, "record_allegation", HEAD, {"allegations": {"append": [third]}})
    assert (later.state, later.data["received_at"]) == ("reported", third["received_at"])
    fourth = allegation("2026-03-05T11:00:00+00:00", "cso", "Same as above.")
    latest = desk.fire(case, "record_allegation", HEAD, {"allegations": {"append": [fourth]}})
    assert latest.data["received_at"] == third["received_at"]


def test_a_case_opened_without_an_allegation_counts_from_when_it_is_entered(desk: Desk) -> None:
    case = desk.start("reprisal", HEAD, {"origin": "attack_on_npm", "reported_on": "2026-03-02"})
    assert desk.get(case).data["received_at"] == "2026-03-02T09:00:00+00:00"
