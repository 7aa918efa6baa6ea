"""The bypasses issue 11 reproduced on the bundled workflows, each now a refusal naming the
rule: refused (kind and reason asserted), audited, and the instance unchanged (``Desk.refused``
checks the last two), on both backends.

The data contract's mechanism has its own tests over small definitions (test_data_contract.py);
these hold the bundled workflows to docs/roles.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from casework import (
    CASEWORKER,
    COMPLAINT,
    COORDINATOR,
    EXPERT,
    HEAD,
    INTAKE,
    LIAISON,
    MEMBER,
    PLACE,
    Desk,
)
from http_server import BundledApi, bundled_api_fixture, live_server_fixture  # noqa: F401
from registerkit import AUTHORITY, BRANDT, DIALLO, POLICE
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import FrozenClock, TransitionRefused
from opcatflow.workflows import BUNDLED

RECOMMENDATIONS = ["End the detention of children."]


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def in_factual_check(desk: Desk) -> str:
    """A visit whose draft, with its recommendations, is with the authorities."""
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-04", "people_interviewed": 0})
    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "-"})
    desk.fire(
        visit,
        "send_for_factual_check",
        HEAD,
        {"report_addressee": AUTHORITY, "report_recommendations": RECOMMENDATIONS},
    )
    desk.fire(visit, "record_correction", LIAISON, {"correction": "412", "correction_to": "fact"})
    return visit


def refusal(refused: TransitionRefused) -> tuple[str, str]:
    return refused.kind, refused.reason


# -- the authorities correct facts, not findings ---------------------------------------------


def test_the_liaison_may_not_rewrite_the_recommendations_while_recording_a_meeting(
    desk: Desk,
) -> None:
    visit = in_factual_check(desk)
    softer = {"report_recommendations": ["Consider alternatives where feasible."]}
    refused = desk.refused(
        visit, "record_meeting", LIAISON, {"factual_check_meeting_on": "2026-04-01", **softer}
    )
    assert refusal(refused) == (
        "data",
        "'record_meeting' does not write report_recommendations (may be written by: "
        "send_for_factual_check (coordinator, head), adopt_final_report (head))",
    )
    assert desk.get(visit).data["report_recommendations"] == RECOMMENDATIONS


@pytest.mark.parametrize(
    ("trigger", "data"),
    [
        ("record_meeting", {"factual_check_meeting_on": "2026-04-01"}),
        ("record_correction", {"correction": "410", "correction_to": "fact"}),
    ],
)
def test_the_liaison_may_not_overwrite_the_corrections_log(
    desk: Desk, trigger: str, data: dict[str, str]
) -> None:
    visit = in_factual_check(desk)
    kept = desk.get(visit).data["corrections"]
    refused = desk.refused(visit, trigger, LIAISON, {**data, "corrections": []})
    assert refusal(refused) == (
        "data",
        "role 'liaison' may not write corrections "
        "(no caller writes it: the workflow's actions keep it)",
    )
    assert desk.get(visit).data["corrections"] == kept


# -- do no harm is the head's (complaint: tests/test_sharing.py) -----------------------------


@pytest.mark.parametrize(("who", "kind"), [(INTAKE, "role"), (CASEWORKER, "data")])
def test_only_the_head_records_a_do_no_harm_decision_on_a_complaint(
    desk: Desk, who: tuple[str, str], kind: str
) -> None:
    complaint = desk.start("complaint", INTAKE, COMPLAINT)
    entry = {
        "ground": "unable_to_consent",
        "recipient": "ombudsperson",
        "fields": ["summary"],
        "use": "refer",
        "decided_on": "2026-03-02",
        "expires_on": "2026-04-02",
    }
    decision = {"append": [entry]}
    refused = desk.refused(complaint, "record_consent", who, {"do_no_harm": decision})
    assert refused.kind == kind
    with pytest.raises(TransitionRefused) as caught:
        desk.start("complaint", INTAKE, {**COMPLAINT, "do_no_harm": [{"n": 1, **entry}]})
    assert caught.value.kind == "data"


def test_a_caseworker_may_not_record_a_do_no_harm_decision_on_a_reprisal_case(
    desk: Desk,
) -> None:
    reprisal = desk.start(
        "reprisal", CASEWORKER, {"origin": "npm_visit", "reported_on": "2026-03-01"}
    )
    refused = desk.refused(reprisal, "record_consent", CASEWORKER, {"do_no_harm": []})
    assert refusal(refused) == (
        "data",
        "role 'caseworker' may not write do_no_harm (only head may write it)",
    )


# -- an expert's record is theirs -------------------------------------------------------------


def test_an_expert_may_not_declare_conflicts_on_another_experts_record(desk: Desk) -> None:
    osei = desk.available_expert()
    desk.available_expert(BRANDT, "z.haq")
    desk.fire(osei, "declare_conflict", EXPERT, {"conflicts_of_interest": [{"place": POLICE}]})
    refused = desk.refused(
        osei, "declare_conflict", ("z.haq", "expert"), {"conflicts_of_interest": [{"place": PLACE}]}
    )
    assert refusal(refused) == (
        "role",
        "role 'expert' acts only on instances it owns (field 'user'), and this one is not its own",
    )


def test_an_expert_may_not_change_their_accreditation_or_their_account(desk: Desk) -> None:
    osei = desk.available_expert()
    declared = {"conflicts_of_interest": [{"place": POLICE}]}
    refused = desk.refused(
        osei, "declare_conflict", EXPERT, {**declared, "accreditation_reference": "FAKE/1"}
    )
    assert refusal(refused) == (
        "data",
        "'declare_conflict' does not write accreditation_reference "
        "(may be written by: accredit (liaison))",
    )
    refused = desk.refused(osei, "declare_conflict", EXPERT, {**declared, "user": "z.haq"})
    assert refusal(refused) == (
        "data",
        "role 'expert' may not write user "
        "(it names the instance's owner: only coordinator, head, liaison may write it)",
    )


@pytest.mark.parametrize(
    "withdrawal",
    [{"remove": [PLACE]}, [{"place": POLICE}]],  # as a change, or a list without it
)
def test_an_expert_may_not_withdraw_a_conflict_they_declared(
    desk: Desk, withdrawal: object
) -> None:
    osei = desk.available_expert()
    declared = {"append": [{"place": PLACE}, {"place": POLICE}]}
    desk.fire(osei, "declare_conflict", EXPERT, {"conflicts_of_interest": declared})
    refused = desk.refused(osei, "declare_conflict", EXPERT, {"conflicts_of_interest": withdrawal})
    assert refusal(refused) == (
        "data",
        "conflicts_of_interest is append-only: entries may be added, never edited or removed; "
        f"this removes [{PLACE}]",
    )


# -- no write without read --------------------------------------------------------------------


def test_a_coordinator_may_not_write_who_is_at_risk(desk: Desk) -> None:
    reprisal = desk.start(
        "reprisal",
        CASEWORKER,
        {"origin": "npm_visit", "reported_on": "2026-03-01", "persons_at_risk": ["Ana Pereira"]},
    )
    for guess in (["Ana Pereira"], ["Rui Costa"]):  # right or wrong, the same refusal
        refused = desk.refused(
            reprisal, "notify_focal_point", COORDINATOR, {"persons_at_risk": guess}
        )
        assert refusal(refused) == (
            "data",
            "role 'coordinator' may not write persons_at_risk (it may not read it)",
        )
    refusals = [r for r in desk.history(reprisal) if r.outcome == "refused"]
    assert [r.changes for r in refusals] == ["{}", "{}"]  # no keyed hash of the guess
    assert desk.get(reprisal).data["persons_at_risk"] == ["Ana Pereira"]


# -- alternatives of one trigger --------------------------------------------------------------


def test_a_pasted_copy_of_a_trigger_that_drops_its_requires_is_a_validate_error(
    tmp_path: Path,
) -> None:
    text = (BUNDLED / "complaint.yaml").read_text(encoding="utf-8")
    copy = (
        "  - trigger: assess\n"
        "    label: Assess seriousness and urgency (the head)\n"
        "    source: recorded\n"
        "    dest: assessed\n"
        "    roles: [head]\n"
    )
    anchor = "  - trigger: record_only\n"
    assert anchor in text
    path = tmp_path / "complaint.yaml"
    path.write_text(text.replace(anchor, copy + anchor, 1), encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines.index("  - trigger: assess") + 1
    pasted = len(lines) - lines[::-1].index("  - trigger: assess")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 6, result.output
    assert (
        f"{path}:{pasted}:14: trigger 'assess' is also declared at line {first} from the same "
        "source with other 'requires' and 'writes': alternatives of one trigger must require "
        "and write the same fields (different roles alone never tell them apart)"
    ) in result.output


def test_over_http_a_coordinator_may_not_write_who_is_at_risk_nor_learn_it_from_history(
    bundled_api: BundledApi,
) -> None:
    api = bundled_api
    case = {"origin": "npm_visit", "reported_on": "2026-03-01", "persons_at_risk": ["Ana Pereira"]}
    body = {"workflow": "reprisal", "data": case}
    created = api.client.post("/instances", json=body, headers=api.auth("caseworker"))
    assert created.status_code == 201, created.text
    path = f"/instances/{created.json()['id']}"
    seen = []
    for guess in (["Ana Pereira"], ["Rui Costa"]):  # the right name, then a wrong one
        fire = {"trigger": "notify_focal_point", "data": {"persons_at_risk": guess}}
        reply = api.client.post(f"{path}/transitions", json=fire, headers=api.auth("coordinator"))
        assert reply.status_code == 422
        problem = reply.json()
        assert (problem["kind"], problem["detail"]) == (
            "data",
            "role 'coordinator' may not write persons_at_risk (it may not read it)",
        )
        history = api.client.get(f"{path}/history", headers=api.auth("coordinator")).json()
        seen.append(history[-1])
    moment = {"id", "seq", "at", "prev_hash", "hash"}  # which refusal, not what it says
    assert [{k: v for k, v in r.items() if k not in moment} for r in seen] == [
        {
            "instance_id": created.json()["id"],
            "actor": "coordinator-actor",
            "role": "coordinator",
            "workflow_id": "reprisal",
            "workflow_version": 6,
            "trigger": "notify_focal_point",
            "from_state": "reported",
            "to_state": None,
            "outcome": "refused",
            "reason": "[withheld]",
            "changes": {},
            "format": 4,
        }
    ] * 2
    applied = api.client.post(
        f"{path}/transitions",
        json={"trigger": "notify_focal_point"},
        headers=api.auth("coordinator"),
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["data"]["persons_at_risk"] == ["[withheld]"]
    stored = api.client.get(path, headers=api.auth("caseworker")).json()
    assert stored["data"]["persons_at_risk"] == ["Ana Pereira"]
