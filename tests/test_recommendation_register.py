"""The recommendation register (recommendation v4, issue 24), on both backends: assessments
over the years, the authority's position, a restated recommendation linked to the one it
repeats, a place's recommendations in one query, and the head's closing decision."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
import registerkit
from casework import COORDINATOR, HEAD, LIAISON, MEMBER, Desk
from http_server import BundledApi, bundled_api_fixture, live_server_fixture  # noqa: F401
from migration_helpers import place
from test_migration_bundled import store_previous
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import DefinitionError, Engine, FrozenClock, TransitionRefused
from opcatflow.engine.filters import typed_where
from opcatflow.engine.migration import Migrator
from opcatflow.engine.rows import ObligationStatus
from opcatflow.workflows import BUNDLED, registry, shipped_plans
from opcatflow.workflows.recommendation_rules import latest

REPORT = {
    "source": "npm_visit",
    "addressee": registerkit.AUTHORITY,
    "text": "Give every person in police custody access to a doctor within 24 hours.",
    "document_symbol": "NPM/2026/07",
    "paragraph": "41",
    "priority": "high",
}


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def assessment(status: str, on: str, evidence: str, **more: Any) -> dict[str, Any]:
    return {"assessments": {"append": [{"on": on, "status": status, "evidence": evidence, **more}]}}


def open_deadlines(desk: Desk, instance_id: str) -> dict[str, tuple[str, date | None]]:
    with desk.engine() as eng:
        rows = eng.obligations(instance_id)
    return {
        r.deadline: (str(r.status), r.last_day)
        for r in rows
        if r.status in (ObligationStatus.PENDING, ObligationStatus.DUE)
    }


def test_partially_implemented_then_implemented_a_year_later_then_closed(desk: Desk) -> None:
    rec = desk.start("recommendation", MEMBER, REPORT)
    desk.fire(rec, "send", LIAISON, {"sent_on": "2026-02-20"})
    desk.fire(
        rec,
        "record_reply",
        LIAISON,
        {"reply": "Doctors on call.", "reply_received_on": "2026-03-01"},
    )
    position = desk.fire(rec, "record_position", LIAISON, {"position": "accepted"})
    assert (position.data["position"], position.data["position_on"]) == ("accepted", "2026-03-02")
    # the follow-up check counts from the reply until an assessment is made
    assert open_deadlines(desk, rec) == {"followup_check": ("pending", date(2026, 9, 1))}
    first = desk.fire(
        rec, "assess", MEMBER, assessment("partially_implemented", "2026-03-02", "3 of 4 stations.")
    )
    assert first.state == "under_dialogue"
    assert first.data["implementation_status"] == "partially_implemented"
    assert open_deadlines(desk, rec) == {"followup_check": ("pending", date(2026, 9, 2))}

    desk.later(days=365)
    # an assessment is appended, never edited: a year later, a new one follows the first
    edit = {"edit": [{"n": 1, "status": "implemented"}]}
    rewrite = {
        "assessments": {**edit, **assessment("implemented", "2027-03-01", "-")["assessments"]}
    }
    assert "append-only" in desk.refused(rec, "assess", MEMBER, rewrite).reason
    assert "0 new assessments" in desk.refused(rec, "assess", MEMBER, {"assessments": edit}).reason
    dated_ahead = assessment("implemented", "2027-12-01", "Planned.")
    assert "in the future" in desk.refused(rec, "assess", MEMBER, dated_ahead).reason
    wrong_follow = assessment("implemented", "2027-03-01", "All four.", follows=7)
    assert "not an earlier assessment" in desk.refused(rec, "assess", MEMBER, wrong_follow).reason
    second = desk.fire(
        rec, "assess", HEAD, assessment("implemented", "2027-03-01", "All four.", follows=1)
    )
    entries = second.data["assessments"]
    assert [(e["n"], e["status"], e.get("follows"), e["by"]) for e in entries] == [
        (1, "partially_implemented", None, MEMBER[0]),
        (2, "implemented", 1, HEAD[0]),
    ]
    assert second.data["implementation_status"] == "implemented"
    # the status on a day is the latest assessment made by then
    assert latest(entries, date(2026, 12, 31))["status"] == "partially_implemented"
    assert latest(entries, date(2027, 12, 31))["status"] == "implemented"
    # the check due in September was met late by the second assessment; the next one
    # counts from that assessment
    assert open_deadlines(desk, rec) == {"followup_check": ("pending", date(2027, 9, 1))}

    refused = desk.refused(rec, "close", MEMBER, {"closing_reason": "Implemented."})
    assert refused.kind == "role"
    closed = desk.fire(rec, "close", HEAD, {"closing_reason": "Implemented in every station."})
    assert (closed.state, closed.data["closed_on"]) == ("closed", "2027-03-02")
    with desk.engine() as eng:
        checks = [r for r in eng.obligations(rec) if r.deadline == "followup_check"]
    assert [(r.occurrence, str(r.status), r.met_by, r.days_late) for r in checks] == [
        (1, "met", "trigger:assess", 0),  # counted from the reply, met by the first assessment
        (2, "met", "trigger:assess", 181),  # due 2 September 2026, met on 2 March 2027
        (3, "met", "trigger:close", 0),  # the head's decision meets the last check
    ]
    desk.verify()


def test_a_rejected_recommendation_restated_after_a_follow_up_visit(desk: Desk) -> None:
    original = desk.start("recommendation", MEMBER, REPORT)
    desk.fire(original, "send", LIAISON, {"sent_on": "2026-01-10"})
    desk.fire(
        original, "record_position", LIAISON, {"position": "rejected", "position_on": "2026-02-01"}
    )
    desk.fire(original, "assess", MEMBER, assessment("not_implemented", "2026-02-15", "Rejected."))
    desk.fire(
        original, "close", HEAD, {"closing_reason": "Rejected; to be restated after a visit."}
    )

    # the desk's register holds the place (registerkit)
    visit = desk.start("visit", COORDINATOR, {"kind": "follow_up", "place": registerkit.PLACE})
    restated = desk.start("recommendation", MEMBER, {**REPORT, "document_symbol": "NPM/2026/19"})
    assert (
        "is not a recommendation"
        in desk.refused(restated, "link_repeat", MEMBER, {"repeats": visit}).reason
    )
    assert (
        "is not a recommendation"
        in desk.refused(restated, "link_repeat", MEMBER, {"repeats": "nope"}).reason
    )
    assert "itself" in desk.refused(restated, "link_repeat", MEMBER, {"repeats": restated}).reason
    linked = desk.fire(restated, "link_repeat", MEMBER, {"repeats": original})
    assert linked.data["repeats"] == original
    newer = desk.start("recommendation", MEMBER, REPORT)
    later = {"repeats": newer}
    assert "entered after this one" in desk.refused(restated, "link_repeat", MEMBER, later).reason
    desk.fire(restated, "send", LIAISON, {"sent_on": "2026-03-02"})
    by_recommendation = {
        **assessment("not_started", "2026-03-02", "Seen."),
        "assessed_by": [original],
    }
    assert "is not a visit" in desk.refused(restated, "assess", MEMBER, by_recommendation).reason
    seen = desk.fire(restated, "assess", MEMBER, {**by_recommendation, "assessed_by": [visit]})
    assert seen.data["assessed_by"] == [visit]
    # what repeats the original: one query
    with desk.engine() as eng:
        wf = [eng.workflow("recommendation")]
        found = eng.query(workflow="recommendation", where=typed_where({"repeats": original}, wf))
    assert [i.id for i in found] == [restated]
    desk.verify()


def places(desk: Desk, *ids: str) -> None:
    """Entries of the place register (recommendations name places by these ids)."""
    with desk.engine() as eng:
        for place_id in ids:
            data = {"name": place_id.replace("-", " ").title(), "place_type": "prison"}
            eng.start("place", actor=HEAD[0], role="head", data=data, instance_id=place_id)


def test_a_places_recommendations_over_the_years_are_one_query(desk: Desk) -> None:
    places(desk, "north-prison", "south-station")
    ids = {
        name: desk.start("recommendation", MEMBER, {**REPORT, "places": named})
        for name, named in [
            ("both", ["north-prison", "south-station"]),
            ("north", ["north-prison"]),
            ("south", ["south-station"]),
            ("none", []),
        ]
    }
    with desk.engine() as eng:
        wf = [eng.workflow("recommendation")]
        found = eng.query(
            workflow="recommendation", where=typed_where({"places": "north-prison"}, wf)
        )
        assert {i.id for i in found} == {ids["both"], ids["north"]}
        south = typed_where({"places": "south-station"}, wf)
        assert eng.count(workflow="recommendation", where=south) == 2
    # the same query from the command line
    listed = CliRunner().invoke(
        app,
        [
            "--db",
            desk.url,
            "list",
            "--workflow",
            "recommendation",
            "--where",
            "places=north-prison",
            "--json",
        ],
        env={"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None},
    )
    assert listed.exit_code == 0, listed.output
    assert {i["id"] for i in json.loads(listed.stdout)["items"]} == {ids["both"], ids["north"]}
    # a place is named by its register id: one that is not in the register is refused
    with pytest.raises(TransitionRefused, match="place 'old-jail' is not in the place register"):
        desk.start("recommendation", MEMBER, {**REPORT, "places": ["old-jail"]})


V3_STATES = [
    "issued", "awaiting_reply", "awaiting_urgent_reply", "escalated", "reply_received",
    "under_dialogue", "implemented", "partially_implemented", "not_implemented",
    "no_longer_relevant",
]  # fmt: skip


def test_the_plan_moves_v3_recommendations_in_every_state_finals_included(engine: Engine) -> None:
    store_previous(engine, "recommendation", 3)
    registerkit.seed_authorities(engine)
    data = {
        "source": "cpt",
        "addressee": "ministry of justice",  # free text: the plan matches it to the register
        "text": "Record every use of restraint.",
        "reference": "CPT/Inf (2025) 12, para. 30",
        "sent_on": "2025-05-02",
        "reply": "Done.",
        "reply_received_on": "2025-06-30",
        "assessment": "Registers seen on our visit.",
    }
    entered = engine.clock.now() - timedelta(days=200)
    ids = dict(
        zip(
            V3_STATES,
            place(engine, "recommendation", 3, V3_STATES, data, entered=entered, strict=False),
            strict=True,
        )
    )
    plan = shipped_plans()["recommendation-3-4"]
    migrator = Migrator(engine)
    report = migrator.run(migrator.load(plan.read_text("utf-8"), str(plan)), dry_run=False)
    assert report.counts() == {"migrated": len(V3_STATES)}
    assert report.finished == 0  # the old final states are moved too
    day = (entered.date()).isoformat()
    for state, instance_id in ids.items():
        moved = engine.get(instance_id)
        assert moved.workflow_version == 4
        assert (moved.data["source"], moved.data["source_body"]) == ("other_body", "CPT")
        assert moved.data["addressee"] == registerkit.AUTHORITY
        assert "assessment" not in moved.data
        if state in (
            "implemented",
            "partially_implemented",
            "not_implemented",
            "no_longer_relevant",
        ):
            assert moved.state == "under_dialogue"
            assert moved.data["assessments"] == [
                {"n": 1, "on": day, "status": state, "evidence": "Registers seen on our visit."}
            ]
            assert moved.data["implementation_status"] == state
            # followed up from the day it was assessed: six months on, already past
            [check] = [o for o in engine.obligations(instance_id) if o.deadline == "followup_check"]
            assert (str(check.status), check.anchor) == ("due", day)
        else:
            assert moved.state == state
    # a reopened one goes on: assessed again, then closed by the head
    reopened = ids["partially_implemented"]
    on = engine.clock.now().date().isoformat()
    again = assessment("implemented", on, "All registers kept.", follows=1)
    engine.fire(reopened, "assess", actor="a.diallo", role="member", data=again)
    engine.fire(reopened, "close", actor="r.haddad", role="head", data={"closing_reason": "Done."})
    assert engine.get(reopened).state == "closed"
    assert engine.verify_audit().ok


def test_a_places_recommendations_over_http(bundled_api: BundledApi) -> None:
    engine = bundled_api.engine
    registerkit.seed_authorities(engine)
    for place_id in ("north-prison", "south-station"):
        data = {"name": place_id, "place_type": "prison"}
        engine.start("place", actor="r.haddad", role="head", data=data, instance_id=place_id)
    north = engine.start(
        "recommendation", actor="a", role="member", data={**REPORT, "places": ["north-prison"]}
    )
    engine.start(
        "recommendation", actor="a", role="member", data={**REPORT, "places": ["south-station"]}
    )
    query = {"workflow": "recommendation", "where": "places=north-prison"}
    listed = bundled_api.client.get("/instances", params=query, headers=bundled_api.auth("member"))
    assert listed.status_code == 200, listed.text
    assert [i["id"] for i in listed.json()["items"]] == [north.id]
    records = {"workflow": "recommendation", "where": "assessments=1"}
    refused = bundled_api.client.get(
        "/instances", params=records, headers=bundled_api.auth("member")
    )
    assert refused.status_code == 422
    assert "only lists of text are filtered on" in refused.json()["detail"]


def test_a_plan_reopens_a_final_state_only_when_it_says_so() -> None:
    with Engine.open("memory:", [BUNDLED], registry) as engine:
        store_previous(engine, "recommendation", 3)
        migrator = Migrator(engine)
        text = (shipped_plans()["recommendation-3-4"]).read_text("utf-8")
        broken = (
            text.replace("    reopen: true\n", "")
            .replace("  issued: issued\n", "  issued:\n    to: issued\n    reopen: true\n")
            .replace("set: {followup_from: entered_on}", "set: {followup_form: entered_on}")
            .replace("source: \"'other_body' if", "source: \"'other_body' iff")
        )
        with pytest.raises(DefinitionError) as caught:
            migrator.load(broken, "plan.yaml")
        shown = [str(p) for p in caught.value.problems]
        assert "plan.yaml:13:13: 'issued' is not final: there is nothing to reopen" in shown
        assert any(
            "'implemented' is final: its instances stay on version 3 (reopen: true moves them on)"
            in p
            for p in shown
        ), shown
        assert any("no field 'followup_form' (did you mean 'followup_from'?)" in p for p in shown)
        assert any(p.startswith("plan.yaml:") and "does not compile" in p for p in shown), shown
