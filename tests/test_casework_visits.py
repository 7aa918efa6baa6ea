"""The visit lifecycle and external expert onboarding, with a fresh engine between steps, on
both backends."""

from __future__ import annotations

import pytest
from casework import (
    COORDINATOR,
    EXPERT,
    HEAD,
    LIAISON,
    MEMBER,
    PLACE,
    SCHEDULER,
    Desk,
    consent,
    recorded,
)
from registerkit import AUTHORITY, BRANDT, DIALLO, HOSPITAL, NAKAMURA

from opcatflow.engine import FrozenClock
from opcatflow.engine.scheduler import Scheduler

RECOMMENDATIONS = [
    "Give every detainee at least one hour outdoors each day.",
    "Record every use of force and review the footage within 48 hours.",
]
# Audited: counts, never names.
PUBLISH_REFUSED = (
    "publish would share personal data (persons): {missing} of {recorded} person(s) have no "
    "active consent for it, and 'publish' rests on consent only (never on a do-no-harm decision)"
)


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def planned_visit(desk: Desk, expert: str) -> str:
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    desk.fire(
        visit,
        "plan",
        COORDINATOR,
        {
            "planned_on": "2026-03-16",
            "priorities": ["use of force", "health care"],
            "team_members": [DIALLO, NAKAMURA],
            "team_experts": [expert],
        },
    )
    return visit


def visit_in_factual_check(desk: Desk) -> str:
    expert = desk.available_expert()
    visit = planned_visit(desk, expert)
    desk.fire(
        visit,
        "record_no_conflict",
        COORDINATOR,
        {"experts_no_conflict": {"append": [{"expert": expert}]}},
    )
    desk.fire(visit, "start_visit", MEMBER)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-18", "people_interviewed": 0})
    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "Overcrowding in wing B."})
    desk.fire(
        visit,
        "send_for_factual_check",
        COORDINATOR,
        {"report_addressee": AUTHORITY, "report_recommendations": RECOMMENDATIONS},
    )
    return visit


def test_a_visit_from_planning_to_closure(desk: Desk) -> None:
    expert = desk.available_expert()
    visit = planned_visit(desk, expert)
    refused = desk.refused(visit, "start_visit", MEMBER)
    assert refused.reason == (
        "visit_team_by_register: expert Dr Ama Osei has not declared that they have no "
        "conflict of interest for Central Remand Prison"
    )
    desk.fire(visit, "postpone", COORDINATOR, reason="lockdown at the prison")
    desk.fire(visit, "reschedule", COORDINATOR, {"planned_on": "2026-03-23"})
    desk.fire(
        visit,
        "record_no_conflict",
        COORDINATOR,
        {"experts_no_conflict": {"append": [{"expert": expert}]}},
    )
    desk.fire(visit, "start_visit", MEMBER)
    ended = desk.fire(
        visit, "end_visit", MEMBER, {"ended_on": "2026-03-25", "people_interviewed": 14}
    )
    assert ended.state == "debrief"
    assert desk.children(visit) == []  # the head decides on a reprisal follow-up (below)

    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "Two allegations of beatings."})
    commented = desk.fire(visit, "comment_draft", EXPERT, {"draft_comment": "Add the medical log."})
    assert commented.data["draft_comments"] == [
        {"n": 1, "by": "dr.osei", "role": "expert", "text": "Add the medical log."}
    ]
    assert "draft_comment" not in commented.data

    sent = desk.fire(
        visit,
        "send_for_factual_check",
        COORDINATOR,
        {"report_addressee": AUTHORITY, "report_recommendations": RECOMMENDATIONS},
    )
    assert (sent.state, sent.data["draft_sent_on"]) == ("factual_check", "2026-03-02")
    corrected = desk.fire(
        visit,
        "record_correction",
        LIAISON,
        {"correction": "The prison held 412 people that day, not 450.", "correction_to": "fact"},
    )
    assert corrected.data["corrections"] == [
        {
            "n": 1,
            "text": "The prison held 412 people that day, not 450.",
            "by": LIAISON[0],
            "on": "2026-03-03",
        }
    ]
    desk.fire(visit, "record_meeting", LIAISON, {"factual_check_meeting_on": "2026-04-02"})
    assert desk.refused(visit, "adopt_final_report", HEAD).reason.startswith(
        "corrections_decided: correction(s) 1 not decided yet"
    )
    desk.fire(
        visit, "decide_correction", HEAD, {"correction_n": 1, "correction_decision": "accepted"}
    )
    desk.fire(visit, "adopt_final_report", HEAD)

    recommendations = [c for c in desk.children(visit) if c.workflow_id == "recommendation"]
    assert sorted(r.data["text"] for r in recommendations) == sorted(RECOMMENDATIONS)
    assert {
        (r.state, r.data["source"], r.data["addressee"], tuple(r.data["places"]))
        for r in recommendations
    } == {("issued", "npm_visit", AUTHORITY, (PLACE,))}

    persons = [{"ref": "P1", "name": "T. Varga"}, {"ref": "P2", "name": "J. Doe"}]
    desk.fire(visit, "record_consent", COORDINATOR, recorded(*persons))
    desk.fire(
        visit, "record_consent", COORDINATOR, {"persons": {"edit": [consent("P1", "publish")]}}
    )
    refused = desk.refused(visit, "publish", HEAD)
    assert refused.reason == PUBLISH_REFUSED.format(missing=1, recorded=2)
    desk.fire(
        visit,
        "record_consent",
        HEAD,
        {"persons": {"remove": ["P2"]}},
        reason="J. Doe's account anonymised",
    )
    desk.fire(visit, "publish", HEAD, {"response_published": True})
    desk.fire(visit, "start_follow_up", COORDINATOR)
    desk.fire(visit, "open_reprisal_follow_up", HEAD)
    [reprisal] = [c for c in desk.children(visit) if c.workflow_id == "reprisal"]
    assert reprisal.state == "reported"
    assert (reprisal.data["origin"], reprisal.data["reported_on"]) == ("npm_visit", "2026-03-25")
    assert desk.history(reprisal.id)[0].reason == (
        "people spoke to the visiting team, so they may face reprisals"
    )
    desk.fire(visit, "close", HEAD, {"outcome": "Recommendations followed up one by one."})
    desk.assert_path(visit, "visit_published")
    desk.verify()


def test_a_visit_is_cancelled_with_its_reason(desk: Desk) -> None:
    visit = desk.start("visit", COORDINATOR, {"kind": "ad_hoc", "place": PLACE})
    done = desk.fire(visit, "cancel", HEAD, {"cancellation_reason": "The unit was closed."})
    assert done.data["cancellation_reason"] == "The unit was closed."
    desk.assert_path(visit, "visit_cancelled")


def test_a_visit_where_nobody_was_interviewed_opens_no_reprisal_follow_up(desk: Desk) -> None:
    visit = visit_in_factual_check(desk)
    assert desk.children(visit) == []


def test_urgent_concerns_open_urgent_recommendations_before_the_report(desk: Desk) -> None:
    expert = desk.available_expert()
    visit = planned_visit(desk, expert)
    desk.fire(
        visit,
        "record_no_conflict",
        COORDINATOR,
        {"experts_no_conflict": {"append": [{"expert": expert}]}},
    )
    desk.fire(visit, "start_visit", COORDINATOR)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-18", "people_interviewed": 0})
    desk.fire(
        visit,
        "send_urgent_notification",
        HEAD,
        {"urgent_concerns": ["No working fire alarm in wing B."], "report_addressee": AUTHORITY},
    )
    [urgent] = desk.children(visit)
    assert (urgent.workflow_id, urgent.data["urgent"]) == ("recommendation", True)
    assert desk.fire(urgent.id, "send", LIAISON).state == "awaiting_urgent_reply"


def debrief_with_urgent_concerns(desk: Desk) -> str:
    visit = desk.start("visit", COORDINATOR, {"kind": "reactive", "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    ended = {"ended_on": "2026-03-02", "people_interviewed": 0, "urgent_found": True}
    desk.fire(visit, "end_visit", MEMBER, ended)
    return visit


def due(desk: Desk) -> list[tuple[str, str]]:
    with desk.engine() as eng:
        return [(f.deadline, f.kind) for f in Scheduler(eng).tick().firings]


def test_urgent_concerns_not_notified_within_a_week_fall_due(desk: Desk) -> None:
    debrief_with_urgent_concerns(desk)
    desk.later(days=8)
    assert ("urgent_notification", "due") in due(desk)


def test_urgent_concerns_notified_in_time_raise_no_deadline(desk: Desk) -> None:
    visit = debrief_with_urgent_concerns(desk)
    concerns = {"urgent_concerns": ["Cells at 41 °C."], "report_addressee": AUTHORITY}
    desk.fire(visit, "send_urgent_notification", HEAD, concerns)
    desk.later(days=8)
    assert [d for d in due(desk) if d[0].startswith("urgent_notification")] == []


def test_the_scheduler_records_a_factual_check_without_reply(desk: Desk) -> None:
    visit = visit_in_factual_check(desk)
    desk.later(days=30)
    with desk.engine() as eng:
        report = Scheduler(eng).tick()
    assert "factual_check_lapsed" in [f.trigger for f in report.firings]
    lapsed = desk.get(visit)
    assert (lapsed.state, lapsed.data["factual_check_lapsed"]) == ("factual_check", True)
    [last] = [r for r in desk.history(visit) if r.outcome == "applied"][-1:]
    assert (last.actor, last.role, last.trigger) == (*SCHEDULER, "factual_check_lapsed")
    # the authorities' check stays owed (and alerted) until the final report is adopted
    outcomes = [r.outcome for r in desk.history(visit) if r.trigger == "factual_check"]
    assert outcomes == ["pending", "reminder", "due", "overdue"]
    assert desk.fire(visit, "adopt_final_report", HEAD).state == "final_report"


def test_an_expert_is_onboarded_suspended_reinstated_and_ended(desk: Desk) -> None:
    expert = desk.start(
        "expert",
        COORDINATOR,
        {"person": BRANDT, "user": EXPERT[0], "recruitment": "via_organisation"},
    )
    refused = desk.refused(
        expert,
        "sign_contract",
        HEAD,
        {"contract_signed_on": "2026-01-05", "confidentiality_signed": False},
    )
    assert refused.reason == "condition 'confidentiality_signed == true' is not met"
    desk.fire(
        expert,
        "sign_contract",
        HEAD,
        {"contract_signed_on": "2026-01-05", "confidentiality_signed": True},
    )
    desk.fire(expert, "complete_training", COORDINATOR, {"training_completed_on": "2026-01-22"})
    desk.fire(
        expert,
        "accredit",
        LIAISON,
        {"accredited_on": "2026-02-01", "accreditation_reference": "A-7"},
    )
    desk.fire(expert, "make_available", COORDINATOR)
    desk.fire(
        expert,
        "declare_conflict",
        EXPERT,
        {"conflicts_of_interest": [{"place": HOSPITAL}]},
    )
    desk.fire(expert, "suspend", HEAD, {"suspension_reason": "Disciplinary inquiry at employer."})
    assert desk.fire(expert, "reinstate", HEAD).state == "available"
    desk.fire(expert, "end", HEAD, {"end_reason": "Moved abroad."})
    desk.assert_path(expert, "expert_onboarded")


def test_a_suspended_expert_not_yet_trained_goes_back_to_training(desk: Desk) -> None:
    expert = desk.start("expert", COORDINATOR, {"person": BRANDT, "recruitment": "ad_hoc"})
    desk.fire(
        expert,
        "sign_contract",
        COORDINATOR,
        {"contract_signed_on": "2026-01-05", "confidentiality_signed": True},
    )
    desk.fire(expert, "suspend", HEAD, {"suspension_reason": "Contract paperwork missing."})
    assert desk.fire(expert, "reinstate", HEAD).state == "contracted"
