"""Complaint triage and referral, step by step with a fresh engine between steps, on both
backends; the complaint opens a referral record, a visit, a recommendation and a reprisal
follow-up, each linked both ways with the reason in both audit trails."""

from __future__ import annotations

import io

import pytest
from casework import (
    ASSESS,
    CASEWORK,
    CASEWORKER,
    COMPLAINT,
    HEAD,
    INTAKE,
    PATHS,
    PLACE,
    RECORD,
    Desk,
    catalog,
)
from registerkit import AUTHORITY, THEME

from opcatflow.engine import FrozenClock


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def test_a_complaint_is_referred_and_opens_every_kind_of_follow_up(desk: Desk) -> None:
    mailed = {**COMPLAINT, "channel": "mail"}
    complaint = desk.start("complaint", INTAKE, mailed, reason="received by mail")
    assert desk.fire(complaint, "acknowledge", INTAKE).data["acknowledged_on"] == "2026-03-02"
    desk.fire(complaint, "record", INTAKE, RECORD)
    desk.fire(complaint, "assess", CASEWORKER, ASSESS)

    evidence = {"referral_body": "police_ombudsperson", "referral_shares": "evidence"}
    refused = desk.refused(complaint, "refer", HEAD, evidence)
    assert refused.reason.startswith("refer would share personal data (persons, summary)")
    consent = {
        "ref": "P1",
        "uses": ["refer"],
        "consent_obtained_by": "l.ferreira",
        "consent_obtained_on": "2026-03-02",
        "consent_how": "in_writing",
    }
    desk.fire(complaint, "record_consent", CASEWORKER, {"persons": {"edit": [consent]}})
    desk.fire(complaint, "refer", HEAD, evidence, reason="the ombudsperson investigates")
    desk.fire(complaint, "open_visit", HEAD, {"visit_reason": "See the cells and the injuries."})
    desk.fire(
        complaint,
        "recommend_to_authority",
        HEAD,
        {"authority": AUTHORITY, "recommendation_text": "Suspend the officers concerned."},
    )
    after = desk.fire(complaint, "open_reprisal_follow_up", HEAD)
    assert after.data["actions_taken"] == [
        "refer", "open_visit", "recommend_to_authority", "open_reprisal_follow_up"
    ]  # fmt: skip

    children = {c.workflow_id: c for c in desk.children(complaint)}
    assert sorted(children) == ["recommendation", "referral", "reprisal", "visit"]
    assert {c.parent_id for c in children.values()} == {complaint}
    assert dict(children["referral"].data) == {
        "body": "police_ombudsperson",
        "shares": "evidence",
        "institution": PLACE,
        "theme": THEME,
    }
    visit = children["visit"]
    assert (visit.state, visit.data["kind"], visit.data["place"]) == ("planning", "reactive", PLACE)
    assert visit.data["priorities"] == [THEME]
    recommendation = children["recommendation"].data
    assert (recommendation["source"], recommendation["addressee"]) == (
        "npm_complaint",
        AUTHORITY,
    )
    reprisal = children["reprisal"].data
    assert (reprisal["origin"], reprisal["place"], reprisal["reported_on"]) == (
        "complaint",
        PLACE,
        "2026-03-02",
    )
    assert reprisal["persons_at_risk"] == ["Tomás Varga"]

    opened = {
        r.changed["opened"][0]: r.reason for r in desk.history(complaint) if r.outcome == "opened"
    }
    assert opened == {
        "referral": "referral record, to follow the referral",
        "visit": "visit opened on a complaint",
        "recommendation": "recommendation to the responsible authority on a complaint",
        "reprisal": "the complaint shows a risk of reprisals",
    }
    for workflow, child in children.items():
        assert desk.history(child.id)[0].reason == opened[workflow]

    desk.fire(complaint, "follow_up", CASEWORKER)
    refused = desk.refused(complaint, "close", HEAD, {"outcome": "Investigation opened."})
    assert refused.reason == (
        "complainant_told_limits: the complainant has not been told what the NPM can and cannot do"
    )
    desk.fire(complaint, "close", HEAD, {"outcome": "Investigation opened.", "told_limits": True})
    desk.assert_path(complaint, "complaint_referred")
    desk.verify()


def test_personal_data_copied_to_a_child_stays_out_of_every_audit_trail(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    desk.fire(complaint, "record", INTAKE, RECORD)
    desk.fire(complaint, "assess", CASEWORKER, ASSESS)
    desk.fire(complaint, "open_reprisal_follow_up", HEAD)
    out = io.StringIO()
    with desk.engine() as eng:
        eng.export_audit(out)
    assert "Tomás Varga" not in out.getvalue()
    assert "cell 14" not in out.getvalue()


def test_a_complaint_kept_for_patterns_counts_as_acknowledged_on_receipt(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, {**COMPLAINT, "received_on": "2026-02-27"})
    recorded = desk.fire(complaint, "record", INTAKE, RECORD)
    assert recorded.data["acknowledged_on"] == "2026-02-27"
    desk.fire(complaint, "assess", CASEWORKER, {**ASSESS, "seriousness": "low"})
    assert desk.fire(complaint, "record_only", HEAD).data["actions_taken"] == ["record_only"]
    desk.assert_path(complaint, "complaint_for_patterns")


def test_a_referral_record_follows_the_referral_to_its_outcome(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    desk.fire(complaint, "record", INTAKE, RECORD)
    desk.fire(complaint, "assess", CASEWORKER, ASSESS)
    desk.fire(
        complaint,
        "refer",
        HEAD,
        {"referral_body": "nhri_complaints", "referral_shares": "preliminary_findings"},
    )
    [referral] = desk.children(complaint)
    desk.fire(referral.id, "confirm_receipt", CASEWORKER, {"acknowledged_on": "2026-03-10"})
    done = desk.fire(
        referral.id,
        "record_outcome",
        CASEWORKER,
        {"result": "investigated", "mechanism_worked": True},
    )
    assert (done.data["result"], done.data["mechanism_worked"]) == ("investigated", True)
    desk.fire(referral.id, "close", HEAD)
    desk.assert_path(referral.id, "referral_followed")


def test_a_visit_opened_on_a_complaint_may_be_ad_hoc(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    desk.fire(complaint, "record", INTAKE, RECORD)
    desk.fire(complaint, "assess", CASEWORKER, ASSESS)
    desk.fire(complaint, "open_visit", HEAD, {"visit_kind": "ad_hoc", "visit_reason": "-"})
    [visit] = desk.children(complaint)
    assert visit.data["kind"] == "ad_hoc"


def test_the_head_opens_an_ad_hoc_visit_on_a_routine_complaint_with_a_reason(
    desk: Desk,
) -> None:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    desk.fire(complaint, "record", INTAKE, RECORD)
    routine = {"seriousness": "low", "urgency": "routine", "npm_best_placed": True}
    desk.fire(complaint, "assess", CASEWORKER, routine)
    go = {"visit_kind": "ad_hoc", "visit_reason": "Third complaint this year about the yard."}
    assert "role" in desk.refused(complaint, "open_visit", CASEWORKER, go).reason
    refused = desk.refused(complaint, "open_visit", HEAD, {"visit_kind": "ad_hoc"})
    assert "visit_reason" in refused.reason
    opened = desk.fire(complaint, "open_visit", HEAD, go)
    assert (opened.state, opened.data["visit_reason"]) == ("acting", go["visit_reason"])
    [visit] = desk.children(complaint)
    assert (visit.workflow_id, visit.data["kind"], visit.data["place"]) == (
        "visit",
        "ad_hoc",
        PLACE,
    )
    assert desk.history(visit.id)[0].reason == "visit opened on a complaint"


def test_every_state_is_reached_by_some_scenario() -> None:
    reached: dict[str, set[str]] = {}
    for workflow, path in PATHS.values():
        reached.setdefault(workflow, set()).update(path)
    unreached = {
        w: set(catalog().get(w).definition.states) - reached.get(w, set()) for w in CASEWORK
    }
    assert {w: states for w, states in unreached.items() if states} == {}
