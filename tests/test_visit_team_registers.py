"""The visit team rules by register id (visit v6), through the real fire path on both
backends: a conflict of interest by place id (a spelling cannot dodge it), a member is a
member because the person register says so, and the expertise the settings require for a
type of place."""

from __future__ import annotations

import pytest
from casework import COORDINATOR, HEAD, MEMBER, Desk
from registerkit import BRANDT, DIALLO, HOSPITAL, NAKAMURA, OSEI, PLACE

from opcatflow.engine import FrozenClock, TransitionRefused
from opcatflow.engine.settings import Settings, SettingsError

EXPERTISE = """
visit:
  required_expertise:
    psychiatric_institution: [psychiatrist, medical_doctor]
"""


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock, Settings.from_text(EXPERTISE))


def planned(desk: Desk, place: str, members: list[str], experts: list[str]) -> str:
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": place})
    desk.fire(
        visit,
        "plan",
        COORDINATOR,
        {
            "planned_on": "2026-03-16",
            "team_members": members,
            "team_experts": experts,
            "experts_no_conflict": [{"expert": e, "declared_on": "2026-03-03"} for e in experts],
        },
    )
    return visit


def test_a_conflict_of_interest_is_a_place_id_a_spelling_cannot_dodge(desk: Desk) -> None:
    expert = desk.available_expert(OSEI)
    # Declared for the place by its register id; a misspelt place is no place at all.
    for misspelt, why in [
        ("Central Remand Prisn", "expected an entry id"),
        ("central-remand-prisn", "'central-remand-prisn' is not in the place register"),
    ]:
        with pytest.raises(TransitionRefused) as caught:
            desk.fire(
                expert,
                "declare_conflict",
                COORDINATOR,
                {"conflicts_of_interest": [{"place": misspelt}]},
            )
        assert caught.value.kind == "data"
        assert why in caught.value.reason
    desk.fire(
        expert,
        "declare_conflict",
        COORDINATOR,
        {"conflicts_of_interest": [{"place": PLACE, "declared_on": "2026-03-01"}]},
    )
    visit = planned(desk, PLACE, [DIALLO], [expert])
    refused = desk.refused(visit, "start_visit", MEMBER)
    assert refused.kind == "guard"
    assert refused.reason == (
        "visit_team_by_register: expert Dr Ama Osei declared a conflict of interest for "
        "Central Remand Prison"
    )
    # The same expert may visit another place.
    other = planned(desk, "north-police-station", [DIALLO], [expert])
    assert desk.fire(other, "start_visit", MEMBER).state == "conducting"


def test_a_conflict_declared_for_a_duplicate_entry_follows_its_merge(desk: Desk) -> None:
    with desk.engine() as eng:
        eng.start(
            "place",
            actor="registrar",
            role="head",
            data={"name": "Central Remand Prison (remand wing)", "place_type": "prison"},
            instance_id="crp-duplicate",
        )
    expert = desk.available_expert(OSEI)
    declared = {"conflicts_of_interest": [{"place": "crp-duplicate", "declared_on": "2026-03-01"}]}
    desk.fire(expert, "declare_conflict", COORDINATOR, declared)
    visit = planned(desk, PLACE, [DIALLO], [expert])
    assert desk.fire(visit, "postpone", HEAD).state == "postponed"
    # The register finds the duplicate: merged into the place, the declaration follows it.
    desk.fire("crp-duplicate", "merge_into", HEAD, {"merged_into": PLACE})
    desk.fire(visit, "reschedule", COORDINATOR, {"planned_on": "2026-03-20"})
    assert desk.refused(visit, "start_visit", MEMBER).reason == (
        "visit_team_by_register: expert Dr Ama Osei declared a conflict of interest for "
        "Central Remand Prison"
    )


def test_a_member_in_name_only_is_refused(desk: Desk) -> None:
    expert = desk.available_expert(OSEI)
    # Dr Osei's person entry says external_expert: listing them as a member does not make
    # the team one with an NPM member.
    visit = planned(desk, PLACE, [OSEI], [expert])
    refused = desk.refused(visit, "start_visit", MEMBER)
    assert refused.reason == (
        "visit_team_by_register: Dr Ama Osei is listed as a member, but the person register "
        "records them as external_expert: a member is a member because the register says so "
        "(list an external expert's record under team_experts)"
    )
    alone = planned(desk, PLACE, [], [expert])
    assert desk.refused(alone, "start_visit", MEMBER).reason == (
        "visit_team_by_register: the team has no NPM member or staff member (external experts "
        "never visit alone)"
    )
    staffed = planned(desk, PLACE, [NAKAMURA], [expert])
    assert desk.fire(staffed, "start_visit", MEMBER).state == "conducting"


def test_the_settings_required_expertise_for_the_type_of_place(desk: Desk) -> None:
    psychiatrist = desk.available_expert(OSEI)
    visit = planned(desk, HOSPITAL, [DIALLO], [psychiatrist])
    refused = desk.refused(visit, "start_visit", MEMBER)
    assert refused.reason == (
        "visit_team_by_register: a visit to a psychiatric_institution needs medical_doctor on "
        "the team (the settings' visit.required_expertise for psychiatric_institution); nobody "
        "on it holds that expertise in the person register"
    )
    doctor = desk.available_expert(BRANDT, user="dr.brandt")
    desk.fire(visit, "postpone", HEAD, reason="find a doctor")
    desk.fire(visit, "reschedule", COORDINATOR, {"planned_on": "2026-03-30"})
    desk.fire(
        visit,
        "plan",
        COORDINATOR,
        {
            "team_experts": [psychiatrist, doctor],
            "experts_no_conflict": {"append": [{"expert": doctor, "declared_on": "2026-03-04"}]},
        },
    )
    assert desk.fire(visit, "start_visit", MEMBER).state == "conducting"
    # A type of place the settings leave out needs nobody in particular.
    prison = planned(desk, PLACE, [DIALLO], [])
    assert desk.fire(prison, "start_visit", MEMBER).state == "conducting"


def test_required_expertise_settings_are_checked_where_written() -> None:
    text = "visit:\n  required_expertise:\n    psychiatric_hospital: [psychiatrist]\n"
    with pytest.raises(SettingsError) as caught:
        Settings.from_text(text, "npm.yaml")
    assert "npm.yaml:3:" in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_text("visit:\n  required_expertise:\n    prison: [surgeon]\n", "npm.yaml")
    assert "npm.yaml:3:" in str(caught.value)
    loaded = Settings.from_text(EXPERTISE)
    assert loaded.policy.required_expertise == {
        "psychiatric_institution": ("psychiatrist", "medical_doctor")
    }
    assert Settings.default().policy.required_expertise == {}
