"""The cross-cutting rules, one refusal at a time: what is refused, the reason given, and the
refusal kept in the audit trail (``Desk.refused`` checks that nothing else changed)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from casework import (
    ASSESS,
    CASEWORKER,
    COMPLAINT,
    COORDINATOR,
    HEAD,
    INTAKE,
    LIAISON,
    MEMBER,
    PLACE,
    RECORD,
    Desk,
    consent,
    recorded,
)
from registerkit import AUTHORITY, BRANDT, DIALLO, OSEI

from opcatflow.engine import Engine, FrozenClock, GuardRefusal, Instance, RuleContext
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.visit_team import visit_team_by_register


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def assessed_complaint(desk: Desk) -> str:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    desk.fire(complaint, "record", INTAKE, RECORD)
    desk.fire(complaint, "assess", CASEWORKER, ASSESS)
    return complaint


# -- consent and do no harm: tests/test_sharing.py -------------------------------------------


def test_a_referral_of_preliminary_findings_shares_no_personal_data(desk: Desk) -> None:
    complaint = assessed_complaint(desk)
    findings = {"referral_body": "ombudsperson", "referral_shares": "preliminary_findings"}
    assert desk.fire(complaint, "refer", HEAD, findings).state == "acting"


def test_a_referral_to_a_body_not_in_the_settings_is_refused(desk: Desk) -> None:
    complaint = assessed_complaint(desk)
    findings = {"referral_body": "prison_director", "referral_shares": "preliminary_findings"}
    refused = desk.refused(complaint, "refer", HEAD, findings)
    assert "'prison_director' is not a body that may receive data" in refused.reason


# -- the visit team ----------------------------------------------------------------------------


def team_visit(desk: Desk, experts: list[str], members: list[str] | None = None) -> str:
    visit = desk.start("visit", COORDINATOR, {"kind": "reactive", "place": PLACE})
    team = {"team_members": [DIALLO] if members is None else members}
    desk.fire(
        visit,
        "plan",
        COORDINATOR,
        {**team, "team_experts": experts, "experts_no_conflict": [{"expert": e} for e in experts]},
    )
    return visit


def start_refused(desk: Desk, visit: str) -> str:
    refused = desk.refused(visit, "start_visit", COORDINATOR)
    return refused.reason.removeprefix("visit_team_by_register: ")


def test_a_visit_without_an_npm_member_or_staff_member_cannot_start(desk: Desk) -> None:
    visit = team_visit(desk, [desk.available_expert()], members=[])
    assert start_refused(desk, visit) == (
        "the team has no NPM member or staff member (external experts never visit alone)"
    )


def test_an_expert_not_yet_accredited_cannot_start_a_visit(desk: Desk) -> None:
    expert = desk.start("expert", COORDINATOR, {"person": BRANDT, "recruitment": "ad_hoc"})
    desk.fire(
        expert,
        "sign_contract",
        COORDINATOR,
        {"contract_signed_on": "2026-01-05", "confidentiality_signed": True},
    )
    desk.fire(expert, "complete_training", COORDINATOR, {"training_completed_on": "2026-02-01"})
    visit = team_visit(desk, [expert])
    assert (
        start_refused(desk, visit)
        == "expert Dr Jonas Brandt is not accredited and available (state: trained)"
    )
    desk.fire(
        expert, "accredit", LIAISON, {"accredited_on": "2026-03-01", "accreditation_reference": "R"}
    )
    desk.fire(expert, "make_available", COORDINATOR)
    assert desk.fire(visit, "start_visit", COORDINATOR).state == "conducting"


def test_a_suspended_expert_cannot_start_a_visit(desk: Desk) -> None:
    expert = desk.available_expert()
    desk.fire(expert, "suspend", HEAD, {"suspension_reason": "Inquiry."})
    visit = team_visit(desk, [expert])
    assert (
        start_refused(desk, visit)
        == "expert Dr Ama Osei is not accredited and available (state: suspended)"
    )


def test_an_id_that_is_not_an_expert_record_is_refused(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    visit = team_visit(desk, [complaint, "no-such-id"])
    assert start_refused(desk, visit) == (
        f"{complaint} is not an expert record; no-such-id is not an expert record"
    )


@pytest.mark.parametrize(
    ("lost", "problem"),
    [
        ({"confidentiality_signed": False}, "has not signed the confidentiality agreement"),
        ({"training_completed_on": None}, "has not completed the initial training"),
    ],
)
def test_an_expert_record_without_confidentiality_or_training_is_refused(
    desk: Desk, lost: dict[str, Any], problem: str
) -> None:
    # Such a record cannot be made through the bundled workflow any more: declaring a
    # conflict writes only the conflicts (test_data_contract.py). The rule still refuses one
    # (a record kept from an earlier version, written when any step wrote any field).
    expert = desk.get(desk.available_expert())
    record = replace(expert, data={**expert.data, **lost})
    entries = {i: desk.get(i) for i in (PLACE, DIALLO, OSEI)}  # the registers' entries

    def stored(instance_id: str) -> Instance | None:
        return entries.get(instance_id)

    visit = desk.get(team_visit(desk, [record.id]))
    ctx = RuleContext(
        instance_id=visit.id,
        workflow="visit",
        state=visit.state,
        trigger="start_visit",
        actor=COORDINATOR[0],
        role=COORDINATOR[1],
        now=desk.clock.now(),
        supplied={},
        data=dict(visit.data),
        lookup=lambda instance_id: record if instance_id == record.id else stored(instance_id),
    )
    with pytest.raises(GuardRefusal) as caught:
        visit_team_by_register(ctx)
    assert caught.value.reason == f"expert Dr Ama Osei {problem}"


def test_an_expert_with_a_conflict_of_interest_for_the_place_is_refused(desk: Desk) -> None:
    expert = desk.available_expert()
    desk.fire(
        expert, "declare_conflict", COORDINATOR, {"conflicts_of_interest": [{"place": PLACE}]}
    )
    visit = team_visit(desk, [expert])
    assert (
        start_refused(desk, visit)
        == "expert Dr Ama Osei declared a conflict of interest for Central Remand Prison"
    )


def test_every_problem_of_the_team_is_listed(desk: Desk) -> None:
    first, second = desk.available_expert(), desk.available_expert(BRANDT, "dr.brandt")
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    desk.fire(
        visit, "plan", COORDINATOR, {"team_members": [DIALLO], "team_experts": [first, second]}
    )
    assert start_refused(desk, visit) == (
        "expert Dr Ama Osei has not declared that they have no conflict of interest for Central "
        "Remand Prison; expert Dr Jonas Brandt has not declared that they have no conflict of "
        "interest for Central Remand Prison"
    )


def test_only_experts_who_took_part_comment_on_the_draft(desk: Desk) -> None:
    expert = desk.available_expert()
    visit = team_visit(desk, [expert])
    desk.fire(visit, "start_visit", COORDINATOR)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-04", "people_interviewed": 0})
    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "-"})
    refused = desk.refused(visit, "comment_draft", ("dr.other", "expert"), {"draft_comment": "x"})
    assert (
        refused.reason
        == "expert_took_part: dr.other was not on this visit's team as an external expert"
    )
    assert desk.fire(visit, "comment_draft", MEMBER, {"draft_comment": "ok"}).state == "drafting"


# -- the factual check -------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["finding", "recommendation"])
def test_the_authorities_cannot_correct_findings_or_recommendations(
    desk: Desk, target: str
) -> None:
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-04", "people_interviewed": 0})
    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "-"})
    desk.fire(visit, "send_for_factual_check", HEAD, {"report_addressee": AUTHORITY})
    refused = desk.refused(
        visit,
        "record_correction",
        LIAISON,
        {"correction": "Staff did not use excessive force.", "correction_to": target},
    )
    assert refused.reason == (
        f"factual_corrections_only: a correction to a {target} is refused: the authorities may "
        "correct facts only; findings and recommendations are the NPM's own"
    )


NAMES = ["Ana Pereira", "Rui Costa", "Tomás Varga"]
VISIT = {"kind": "regular", "place": PLACE}


# -- publication -------------------------------------------------------------------------------


def test_a_report_is_not_published_before_anyone_records_whose_data_it_carries(
    desk: Desk,
) -> None:
    visit = desk.final_report()
    refused = desk.refused(visit, "publish", HEAD)
    assert (refused.kind, refused.reason) == (
        "guard",
        "persons_recorded: record whose personal data the report carries first: list them in "
        "persons and set persons_complete (with no persons when it carries nobody's)",
    )
    desk.fire(visit, "record_consent", COORDINATOR, {"persons_complete": False})
    assert desk.refused(visit, "publish", HEAD).reason == refused.reason
    consented = consent("P1", "publish", name=NAMES[0])
    desk.fire(visit, "record_consent", COORDINATOR, {"persons": [consented]})
    assert desk.refused(visit, "publish", HEAD).reason == refused.reason  # still not stated
    desk.fire(visit, "record_consent", COORDINATOR, {"persons_complete": True})
    assert desk.fire(visit, "publish", HEAD).state == "published"


def test_a_report_recorded_as_carrying_nobodys_personal_data_is_published(desk: Desk) -> None:
    visit = desk.final_report()
    desk.fire(visit, "record_consent", COORDINATOR, {"persons_complete": True})
    published = desk.fire(visit, "publish", HEAD)
    assert published.state == "published"
    assert published.data["persons_complete"] is True
    assert not published.data.get("persons")


def test_a_report_with_data_of_persons_who_did_not_consent_is_not_published(desk: Desk) -> None:
    persons = [{"ref": f"P{i}", "name": name} for i, name in enumerate(NAMES, 1)]
    visit = desk.final_report()
    desk.fire(visit, "record_consent", COORDINATOR, recorded(*persons))
    desk.fire(visit, "record_consent", MEMBER, {"persons": {"edit": [consent("P2", "publish")]}})
    refused = desk.refused(visit, "publish", HEAD)
    assert refused.reason == (
        "publish would share personal data (persons): 2 of 3 person(s) have no active consent "
        "for it, and 'publish' rests on consent only (never on a do-no-harm decision)"
    )  # a count: the reason is audited, so it never names them
    assert not any(name in refused.reason for name in NAMES)
    everyone = [consent(f"P{i}", "publish") for i in (1, 2, 3)]
    desk.fire(visit, "record_consent", MEMBER, {"persons": {"edit": everyone}})
    assert desk.fire(visit, "publish", HEAD).state == "published"


def test_a_consent_withdrawn_or_given_for_another_use_does_not_publish(desk: Desk) -> None:
    visit = desk.final_report()
    withdrawn = consent("P1", "publish", name=NAMES[0], consent_withdrawn_on="2026-03-02")
    desk.fire(visit, "record_consent", COORDINATOR, recorded(withdrawn))
    assert desk.refused(visit, "publish", HEAD).kind == "guard"
    later = consent("P1", "publish", on="2026-03-03", consent_withdrawn_on=None)
    desk.fire(visit, "record_consent", COORDINATOR, {"persons": {"edit": [later]}})
    assert desk.refused(visit, "publish", HEAD).kind == "guard"  # obtained tomorrow
    desk.later(days=1)
    assert desk.fire(visit, "publish", HEAD).state == "published"


def test_persons_and_consents_cannot_be_changed_in_the_publishing_step(desk: Desk) -> None:
    visit = desk.final_report()
    desk.fire(visit, "record_consent", COORDINATOR, {"persons": [{"ref": "P1", "name": "A"}]})
    refused = desk.refused(visit, "publish", HEAD, {"persons": []})
    assert (refused.kind, refused.reason) == (
        "data",
        "'publish' does not write persons "
        "(may be written by: record_consent (coordinator, member, head))",
    )
    refused = desk.refused(visit, "publish", HEAD, {"persons_complete": True})
    assert (refused.kind, refused.reason) == (
        "data",
        "'publish' does not write persons_complete "
        "(may be written by: record_consent (coordinator, member, head))",
    )


def test_a_visit_pinned_to_version_2_publishes_through_its_publication_consent_guard(
    desk: Desk, db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for bundled in BUNDLED.glob("*.yaml"):
        shutil.copy(bundled, folder)
    # version 2 as released, less its 'on_due: {notify: ...}' lines (never sent, now refused
    # in a file; a stored copy keeps them)
    released = (Path(__file__).parent / "fixtures" / "visit_v2.yaml").read_text()
    kept = [line for line in released.splitlines() if "on_due: {notify:" not in line]
    (folder / "visit.yaml").write_text("\n".join(kept) + "\n")
    with Engine.open(db_url, [folder], registry, clock=clock) as old:
        visit = old.start("visit", actor=COORDINATOR[0], role=COORDINATOR[1], data=VISIT).id
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-04", "people_interviewed": 0})
    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "-"})
    desk.fire(visit, "send_for_factual_check", HEAD, {"report_addressee": AUTHORITY})
    desk.fire(visit, "adopt_final_report", HEAD)
    assert desk.get(visit).workflow_version == 2
    refused = desk.refused(visit, "publish", HEAD)
    assert refused.reason == (
        "publication_consent: nobody has recorded whose personal data the report carries "
        "(record an empty list when it carries none)"
    )
    desk.fire(visit, "set_report_persons", COORDINATOR, {"report_persons": NAMES})
    desk.fire(visit, "record_publication_consents", MEMBER, {"publication_consents": NAMES[1:2]})
    refused = desk.refused(visit, "publish", HEAD)
    assert refused.reason == (
        "publication_consent: the report carries personal data of 2 person(s) who have not "
        "consented to publication: obtain their consent or remove their data"
    )
    desk.fire(visit, "record_publication_consents", MEMBER, {"publication_consents": NAMES})
    assert desk.fire(visit, "publish", HEAD).state == "published"
