"""Recommendation follow-up and reprisal follow-up, with a fresh engine between steps, on both
backends; their declared deadlines run through the scheduler."""

from __future__ import annotations

from typing import Any

import pytest
from casework import CASEWORKER, COORDINATOR, HEAD, LIAISON, MEMBER, PLACE, SCHEDULER, Desk
from registerkit import AUTHORITY

from opcatflow.engine import FrozenClock
from opcatflow.engine.scheduler import Scheduler

CAT = {
    "source": "cat",
    "addressee": AUTHORITY,
    "text": "Ensure that every person detained by the police has access to a doctor.",
    "reference": "Concluding observations, para. 12",
    "theme": "health care",
}
SPT_VISIT = {
    "origin": "spt_visit",
    "reported_on": "2026-03-01",
    "place": PLACE,
    "persons_at_risk": ["K. Baptiste"],
    "allegation": "Moved to an isolation cell the day after speaking to the SPT.",
}
DO_NO_HARM = {
    "do_no_harm": {
        "append": [
            {
                "ground": "serious_violation_reprisal_risk",
                "recipient": "ombudsperson",
                "fields": ["allegation", "persons_at_risk"],
                "use": "escalate",
                "decided_on": "2026-03-02",
                "expires_on": "2026-06-02",
            }
        ]
    }
}


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def assessment(status: str, evidence: str, on: str = "2026-03-02") -> dict[str, Any]:
    """``assess`` data: one assessment appended (the engine numbers it)."""
    return {"assessments": {"append": [{"on": on, "status": status, "evidence": evidence}]}}


def tick(desk: Desk) -> list[tuple[str, str, str, str | None]]:
    with desk.engine() as eng:
        report = Scheduler(eng).tick()
    return [(f.deadline, f.kind, f.outcome, f.trigger) for f in report.firings]


def test_a_recommendation_is_answered_discussed_and_implemented(desk: Desk) -> None:
    recommendation = desk.start("recommendation", LIAISON, CAT)
    sent = desk.fire(recommendation, "send", LIAISON)
    assert (sent.state, sent.data["sent_on"]) == ("awaiting_reply", "2026-03-02")
    replied = desk.fire(
        recommendation,
        "record_reply",
        LIAISON,
        {"reply": "A doctor is now on call in every station."},
    )
    assert replied.data["reply_received_on"] == "2026-03-02"
    desk.fire(recommendation, "open_dialogue", MEMBER)
    reviewed = desk.fire(
        recommendation, "review", MEMBER, {"review_note": "On-call lists seen in 3 of 4 stations."}
    )
    assert reviewed.data["reviews"] == ["2026-03-02: On-call lists seen in 3 of 4 stations."]
    assessed = desk.fire(recommendation, "assess", HEAD, assessment("implemented", "Seen."))
    assert assessed.data["assessments"] == [
        {"n": 1, "on": "2026-03-02", "status": "implemented", "evidence": "Seen.", "by": HEAD[0]}
    ]
    assert assessed.data["implementation_status"] == "implemented"
    desk.fire(recommendation, "close", HEAD, {"closing_reason": "Implemented."})
    desk.assert_path(recommendation, "recommendation_implemented")


def test_an_urgent_notification_without_reply_is_escalated_by_the_scheduler(desk: Desk) -> None:
    recommendation = desk.start(
        "recommendation", MEMBER, {**CAT, "source": "npm_visit", "urgent": True}
    )
    desk.fire(recommendation, "send", LIAISON)
    desk.later(days=22)
    assert tick(desk) == [("urgent_reply", "reminder", "reminded", None)]
    desk.later(days=7)
    assert tick(desk) == [
        ("urgent_reply", "due", "applied", "escalate"),
        ("urgent_reply", "alert", "alerted", None),  # still owed, escalated: its first alert
    ]
    escalated = desk.get(recommendation)
    assert escalated.state == "escalated"
    assert escalated.data["escalations"] == [
        {"n": 1, "on": "2026-03-31", "step": "reply deadline passed", "by": SCHEDULER[0]}
    ]
    assert desk.history(recommendation)[-1].actor == SCHEDULER[0]
    further = desk.fire(
        recommendation,
        "escalate_further",
        HEAD,
        {"escalation_step": "Meeting with the minister's office"},
    )
    assert further.data["escalations"][-1] == {
        "n": 2,
        "on": "2026-03-31",
        "step": "Meeting with the minister's office",
        "by": HEAD[0],
    }
    desk.fire(recommendation, "record_reply", LIAISON, {"reply": "Alarms repaired in wing B."})
    desk.fire(recommendation, "open_dialogue", MEMBER)
    partly = assessment("partially_implemented", "Wing C not yet.")
    desk.fire(recommendation, "assess", HEAD, partly)
    desk.assert_path(recommendation, "recommendation_escalated")


def test_a_recommendation_the_authority_ignores_is_assessed_not_implemented(desk: Desk) -> None:
    recommendation = desk.start("recommendation", HEAD, {**CAT, "source": "upr"})
    desk.fire(recommendation, "send", HEAD)
    desk.fire(recommendation, "escalate", HEAD, reason="the ministry said it will not reply")
    desk.fire(recommendation, "assess", HEAD, assessment("not_implemented", "No engagement."))
    desk.fire(recommendation, "close", HEAD, {"closing_reason": "No engagement in two years."})
    desk.assert_path(recommendation, "recommendation_refused")


def test_a_recommendation_overtaken_by_events_is_set_aside(desk: Desk) -> None:
    cpt = {**CAT, "source": "other_body", "source_body": "CPT"}
    recommendation = desk.start("recommendation", MEMBER, cpt)
    refused = desk.refused(recommendation, "close", HEAD, {"closing_reason": "Station closed."})
    assert "no assessment yet" in refused.reason
    closed = assessment("no_longer_relevant", "The police station closed.")
    desk.fire(recommendation, "assess", HEAD, closed)
    desk.fire(recommendation, "close", HEAD, {"closing_reason": "The police station closed."})
    desk.assert_path(recommendation, "recommendation_set_aside")


def test_a_reprisal_follow_up_from_report_to_escalation(desk: Desk) -> None:
    reprisal = desk.start("reprisal", CASEWORKER, SPT_VISIT)
    notified = desk.fire(reprisal, "notify_focal_point", CASEWORKER)
    assert (notified.data["focal_point_notified_on"], notified.data["last_contact_on"]) == (
        "2026-03-02",
        "2026-03-01",
    )
    desk.fire(
        reprisal,
        "assess_risk",
        CASEWORKER,
        {"risk_level": "high", "risk_assessment": "Isolation used as punishment."},
    )
    contact = desk.fire(reprisal, "record_contact", MEMBER)
    assert (contact.data["contacts"], contact.data["last_contact_on"]) == (1, "2026-03-02")
    desk.fire(
        reprisal,
        "plan_follow_up_visit",
        COORDINATOR,
        {"measures": ["group_interviews", "many_files_reviewed"]},
    )
    [visit] = desk.children(reprisal)
    assert (visit.workflow_id, visit.data["kind"], visit.data["place"]) == (
        "visit",
        "reprisal_follow_up",
        PLACE,
    )
    informed = desk.fire(reprisal, "inform_management", HEAD)
    assert informed.data["management_informed_on"] == "2026-03-02"

    escalation = {
        "escalated_to": ["spt_confidential_contact"],
        "escalation_shares_personal_data": True,
        "escalation_body": "ombudsperson",
    }
    refused = desk.refused(reprisal, "escalate", HEAD, escalation)
    assert refused.reason.startswith("escalate would share personal data (allegation")
    assert "nobody is recorded in persons, so nobody consented" in refused.reason
    desk.fire(reprisal, "decide_do_no_harm", HEAD, DO_NO_HARM)
    desk.fire(reprisal, "escalate", HEAD, escalation)
    desk.fire(reprisal, "close", HEAD, {"outcome": "Returned to the ordinary regime."})
    desk.assert_path(reprisal, "reprisal_escalated")
    audited = [r.changed for r in desk.history(reprisal) if r.trigger == "decide_do_no_harm"]
    assert audited[0]["do_no_harm"]["1"]["recipient"] == [None, "ombudsperson"]
    desk.verify()


def test_contact_checks_fall_due_every_30_days_from_the_last_contact(desk: Desk) -> None:
    reprisal = desk.start("reprisal", CASEWORKER, SPT_VISIT)
    desk.fire(reprisal, "notify_focal_point", CASEWORKER)
    desk.fire(reprisal, "assess_risk", CASEWORKER, {"risk_level": "low", "risk_assessment": "-"})
    desk.later(days=25)
    desk.fire(reprisal, "record_contact", MEMBER)  # restarts the count
    desk.later(days=10)
    assert [f for f in tick(desk) if f[0] == "contact_check"] == []
    desk.later(days=25)
    assert ("contact_check", "due", "due", None) in tick(desk)


def test_a_reprisal_follow_up_can_close_at_the_risk_assessment(desk: Desk) -> None:
    reprisal = desk.start("reprisal", HEAD, {**SPT_VISIT, "origin": "attack_on_npm"})
    desk.fire(reprisal, "notify_focal_point", HEAD)
    refused = desk.refused(reprisal, "close", HEAD, {"outcome": "No risk found."})
    assert refused.reason == "condition 'risk_level' is not met"
    closed = desk.fire(reprisal, "close", HEAD, {"outcome": "No risk found.", "risk_level": "low"})
    assert closed.state == "closed"
