"""International engagement cycles over years of simulated time, with a fresh engine between
steps, on both backends: every deadline date checked against its docs/domain.md rule by hand.

Due dates below are the last day of each period (the shipped settings count in UTC with no
holidays): "6 months before a session opening on 25 January 2027" is 25 July 2026.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from casework import COORDINATOR, HEAD, LIAISON, MEMBER, Desk
from registerkit import AUTHORITY, HEALTH, HOSPITAL, PLACE, POLICE

from opcatflow.engine import FrozenClock, compile_text
from opcatflow.engine.agenda import agenda
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.settings import Settings
from opcatflow.workflows import registry
from opcatflow.workflows.engagement import hrc_adoption_estimate, upr_session_estimate

ENGAGEMENT = {"spt", "npm", "cat", "upr"}


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def due(desk: Desk, instance_id: str) -> dict[str, date]:
    """The armed deadlines of one instance, each with its last day."""
    with desk.engine() as eng:
        entries = agenda(eng, now=desk.clock.now())
    return {
        e.deadline: (e.due_at - timedelta(microseconds=1)).date()
        for e in entries
        if e.instance_id == instance_id
    }


def on(desk: Desk, day: str) -> None:
    desk.clock.set(datetime.fromisoformat(day + "T09:00:00+00:00"))


def changed(desk: Desk, instance_id: str, field: str) -> list[object]:
    """Every [old, new] pair the audit trail keeps for ``field``."""
    import json

    return [
        json.loads(r.changes)[field]
        for r in desk.history(instance_id)
        if field in json.loads(r.changes or "{}")
    ]


# -- the UN calendar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened", "later", "expected"),
    [
        ("2023-01-23", 3, "2024-01-22"),  # 42nd -> 45th session
        ("2023-01-23", 1, "2023-05-01"),  # 42nd -> 43rd
        ("2023-01-23", 2, "2023-11-06"),  # 42nd -> 44th
        ("2024-01-22", 3, "2025-01-20"),  # 45th -> 48th
        ("2024-04-29", 3, "2025-04-28"),  # 46th -> 49th
        ("2024-11-04", 3, "2025-11-03"),  # 47th -> 50th
        ("2027-01-25", 14, "2031-11-03"),  # a January review: the next in October/November
    ],
)
def test_upr_session_estimates_match_the_published_sessions(
    opened: str, later: int, expected: str
) -> None:
    assert upr_session_estimate(date.fromisoformat(opened), later) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        ("2023-01-25", "2023-06-19"),  # HRC 53
        ("2023-05-03", "2023-09-11"),  # HRC 54
        ("2023-11-08", "2024-02-26"),  # HRC 55, the next year
        ("2024-11-06", "2025-02-24"),  # HRC 58
    ],
)
def test_the_adopting_council_session_follows_the_review_season(review: str, expected: str) -> None:
    assert hrc_adoption_estimate(date.fromisoformat(review)) == date.fromisoformat(expected)


# -- UPR --------------------------------------------------------------------------------------


def test_a_upr_review_moved_to_another_session_anchors_the_next_cycle_on_the_held_one(
    desk: Desk,
) -> None:
    on(desk, "2026-03-02")
    cycle = desk.start(
        "upr_cycle", MEMBER, {"cycle": 5, "session_number": 54, "session_start": "2027-01-25"}
    )
    # January/February session: 6 months before; the State's report 12 weeks before.
    assert due(desk, cycle) == {
        "stakeholder_submission": date(2026, 7, 25),
        "national_report": date(2026, 11, 2),
    }
    # OHCHR publishes its own date: it wins, and the computed one is gone.
    desk.fire(cycle, "record_stakeholder_deadline", MEMBER, {"stakeholder_deadline": "2026-07-15"})
    assert due(desk, cycle)["stakeholder_submission"] == date(2026, 7, 15)
    on(desk, "2026-07-10")
    desk.fire(cycle, "submit", HEAD, {"submission_reference": "NPM-UPR5-2026"})
    assert due(desk, cycle) == {
        "national_report": date(2026, 11, 2),  # one obligation over the states it spans
        "documents_public": date(2026, 12, 14),
    }
    # The review is moved to the April/May session: the January dates never anchor anything.
    on(desk, "2026-11-20")
    moved = desk.fire(
        cycle, "postpone", MEMBER, {"postponement_reason": "the State asked for a later session"}
    )
    assert (moved.data.get("session_start"), moved.data["postponements"]) == (
        None,
        ["2026-11-20: session_start 2027-01-25 (the State asked for a later session)"],
    )
    assert due(desk, cycle) == {}
    back = desk.fire(
        cycle, "reschedule", MEMBER, {"session_start": "2027-05-03", "session_number": 55}
    )
    # The submission sent for January stands: back to waiting for the session, nothing owed
    # again; the State's report and the documents count from 3 May 2027 (12 and 6 weeks).
    assert back.state == "submitted"
    assert due(desk, cycle) == {
        "national_report": date(2027, 2, 8),
        "documents_public": date(2027, 3, 22),
    }
    on(desk, "2027-05-03")
    desk.fire(cycle, "open_dialogue", MEMBER)
    desk.fire(cycle, "record_activity", MEMBER, {"activity": "bilateral_meeting"})
    desk.fire(cycle, "hold_review", MEMBER, {"review_held_on": "2027-05-05"})
    assert due(desk, cycle) == {}  # the report's 48 hours are a minimum: never owed
    reported = desk.fire(
        cycle,
        "record_report",
        MEMBER,
        {"report_adopted_on": "2027-05-07", "recommendations": ["Ratify", "Fund the NPM"]},
    )
    # An April/May review is adopted at the September Council session (an estimate).
    assert (reported.data["hrc_session_start"], reported.data["hrc_session_start_estimated"]) == (
        "2027-09-13",
        True,
    )
    assert due(desk, cycle) == {"state_responses": date(2027, 8, 30)}  # 14 days before
    published = desk.fire(cycle, "record_hrc_session", MEMBER, {"hrc_session_start": "2027-09-06"})
    assert published.data["hrc_session_start_estimated"] is False
    assert due(desk, cycle) == {"state_responses": date(2027, 8, 23)}
    assert changed(desk, cycle, "hrc_session_start")[-1] == ["2027-09-13", "2027-09-06"]
    on(desk, "2027-09-20")
    desk.fire(
        cycle,
        "adopt_outcome",
        HEAD,
        {"outcome_adopted_on": "2027-09-20", "recommendations_addressee": HEALTH},
    )
    assert {(r.workflow_id, r.data["source"]) for r in desk.children(cycle)} == {
        ("recommendation", "upr")
    }
    assert due(desk, cycle) == {"mid_term_report": date(2029, 5, 5)}  # 2 years after
    on(desk, "2031-06-01")
    desk.fire(cycle, "close_cycle", HEAD)
    desk.assert_path(cycle, "upr_moved_then_reviewed")
    [following] = [c for c in desk.children(cycle) if c.workflow_id == "upr_cycle"]
    # 14 sessions after the 55th (April/May 2027): the 69th, estimated five years after the
    # review, in the same season: the Monday on or after 28 April 2032, 3 May 2032.
    assert (following.parent_id, following.data["session_number"], following.data["cycle"]) == (
        cycle,
        69,
        6,
    )
    assert (following.data["session_start"], following.data["session_start_estimated"]) == (
        "2032-05-03",
        True,
    )
    # An April/May session: 7 months before, 3 October 2031.
    assert due(desk, following.id)["stakeholder_submission_apr_may"] == date(2031, 10, 3)
    # The next cycle is born with its estimates: season, last day and adopting Council session.
    assert (
        following.data["session_season"],
        following.data["session_end"],
        following.data["hrc_session_start"],
        following.data["hrc_session_start_estimated"],
    ) == ("apr_may", "2032-05-14", "2032-09-13", True)
    # The UN publishes the dates: an October/November-style start moves the rule to 7 months.
    confirmed = desk.fire(following.id, "record_session", MEMBER, {"session_start": "2031-11-03"})
    assert confirmed.data["session_start_estimated"] is False
    assert due(desk, following.id) == {
        "stakeholder_submission_oct_nov": date(2031, 4, 3),
        "national_report": date(2031, 8, 11),
    }
    desk.verify()


def test_a_upr_cycle_started_by_hand_carries_its_estimated_dates_from_the_first_step(
    desk: Desk,
) -> None:
    on(desk, "2026-03-02")
    cycle = desk.start("upr_cycle", MEMBER, {"cycle": 5, "session_start": "2027-01-25"})
    data = desk.get(cycle).data
    # The session opens Monday 25 January 2027 and ends Friday of the second week; the review
    # is placed on the first day until known; a January review is adopted at the June Council
    # session (the Monday on or after 15 June: 21 June 2027). Only the entered date is firm.
    assert {
        name: (data[name], data[f"{name}_estimated"])
        for name in ("session_start", "session_end", "review_on", "hrc_session_start")
    } == {
        "session_start": ("2027-01-25", False),
        "session_end": ("2027-02-05", True),
        "review_on": ("2027-01-25", True),
        "hrc_session_start": ("2027-06-21", True),
    }
    assert data["session_season"] == "jan_feb"
    # Entering the real review day replaces that estimate and moves the adoption estimate.
    data = desk.fire(cycle, "record_session", MEMBER, {"review_on": "2027-01-28"}).data
    assert (data["review_on_estimated"], data["hrc_session_start"]) == (False, "2027-06-21")
    desk.verify()


# -- CAT --------------------------------------------------------------------------------------


def test_cat_follow_up_counts_from_the_last_day_of_the_session_and_the_cycle_repeats(
    desk: Desk,
) -> None:
    on(desk, "2026-03-02")
    cycle = desk.start(
        "cat_cycle",
        MEMBER,
        {
            "cycle": 8,
            "procedure": "simplified",
            "previous_session_last_day": "2025-11-28",
            "loi_session_start": "2028-04-17",
        },
    )
    assert due(desk, cycle) == {
        "loi_information": date(2028, 2, 21),  # 8 weeks before the session
        "periodic_report": date(2029, 11, 28),  # 4 years after the last day
    }
    on(desk, "2028-02-20")
    desk.fire(cycle, "skip_loi_information", HEAD)
    on(desk, "2029-11-20")
    desk.fire(cycle, "record_state_report", LIAISON, {"state_report_received_on": "2029-11-20"})
    desk.fire(
        cycle,
        "record_dates",
        MEMBER,
        {"cat_session_start": "2030-04-22", "cat_session_last_day": "2030-05-17"},
    )
    assert due(desk, cycle) == {"examination_information": date(2030, 2, 25)}
    moved = desk.fire(cycle, "postpone", HEAD, {"postponement_reason": "moved by the Committee"})
    assert (moved.data.get("cat_session_start"), len(moved.data["postponements"])) == (None, 1)
    desk.fire(
        cycle,
        "reschedule",
        HEAD,
        {"cat_session_start": "2030-07-07", "cat_session_last_day": "2030-08-01"},
    )
    assert due(desk, cycle) == {"examination_information": date(2030, 5, 12)}
    briefing = {"briefing_on": "2030-07-14"}
    refusal = desk.refused(cycle, "brief_committee", MEMBER, briefing)
    assert "sent written information" in refusal.reason
    desk.fire(cycle, "send_information", HEAD)
    on(desk, "2030-07-14")
    desk.fire(cycle, "brief_committee", MEMBER, briefing)
    desk.fire(cycle, "attend_examination", MEMBER, {"examination_on": "2030-07-15"})
    observations = {
        "observations_adopted_on": "2030-07-29",
        "recommendations": ["Independent complaints body", "Record all injuries"],
        "recommendations_addressee": AUTHORITY,
    }
    too_many = {**observations, "followup_recommendations": ["a", "b", "c", "d", "e"]}
    desk.refused(cycle, "record_observations", HEAD, too_many)
    followed = desk.fire(cycle, "record_observations", HEAD, observations)
    assert followed.data["observations_session_last_day"] == "2030-08-01"
    # One year after the LAST DAY of the session, not after the adoption on 29 July.
    assert due(desk, cycle) == {
        "followup_information": date(2031, 8, 1),
        "state_followup_reply": date(2031, 8, 1),  # the State's, due the same day
    }
    assert {(r.workflow_id, r.data["source"]) for r in desk.children(cycle)} == {
        ("recommendation", "cat")
    }
    desk.fire(cycle, "record_dates", MEMBER, {"followup_due_published": "2031-08-04"})
    assert due(desk, cycle) == {
        "followup_information": date(2031, 8, 4),
        "state_followup_reply": date(2031, 8, 4),
    }
    on(desk, "2031-07-30")
    desk.fire(cycle, "send_followup_information", HEAD)
    desk.fire(cycle, "close_cycle", HEAD)
    desk.assert_path(cycle, "cat_moved_then_examined")
    [following] = [c for c in desk.children(cycle) if c.workflow_id == "cat_cycle"]
    assert (following.data["cycle"], following.data["previous_session_last_day"]) == (
        9,
        "2030-08-01",
    )
    assert due(desk, following.id) == {"periodic_report": date(2034, 8, 1)}
    desk.verify()


# -- SPT --------------------------------------------------------------------------------------


def test_a_postponed_spt_visit_keeps_its_history_and_recomputes_its_deadlines(
    desk: Desk,
) -> None:
    on(desk, "2025-11-20")  # the November programme lists next year's visits
    visit = desk.start(
        "spt_visit",
        COORDINATOR,
        {
            "visit_kind": "country",
            "programme_published_on": "2025-11-18",
            "visit_starts_on": "2026-06-08",
        },
    )
    assert due(desk, visit) == {"npm_information": date(2026, 5, 11)}  # 4 weeks before
    on(desk, "2026-04-01")
    postponed = desk.fire(
        visit, "postpone", HEAD, {"postponement_reason": "the State asked for a postponement"}
    )
    assert postponed.data["postponements"] == [
        "2026-04-01: visit_starts_on 2026-06-08 (the State asked for a postponement)"
    ]
    assert due(desk, visit) == {}
    desk.fire(visit, "reschedule", COORDINATOR, {"visit_starts_on": "2027-02-15"})
    assert due(desk, visit) == {"npm_information": date(2027, 1, 18)}
    assert changed(desk, visit, "visit_starts_on") == [
        [None, "2026-06-08"],
        ["2026-06-08", None],
        [None, "2027-02-15"],
    ]
    on(desk, "2027-01-10")
    desk.fire(visit, "send_information", COORDINATOR, {"information_topics": ["places", "risks"]})
    on(desk, "2027-02-15")
    desk.fire(visit, "start_visit", COORDINATOR)
    desk.fire(visit, "record_activity", MEMBER, {"activity": "opening_meeting"})
    desk.fire(visit, "suspend", HEAD, {"suspension_reason": "access to a prison refused"})
    desk.fire(visit, "resume", HEAD)
    ended = {"visit_ends_on": "2027-02-26", "places_seen": [PLACE, POLICE]}
    desk.fire(visit, "end_visit", COORDINATOR, ended)
    reprisals = [c for c in desk.children(visit) if c.workflow_id == "reprisal"]
    assert sorted((r.data["origin"], r.data["place"]) for r in reprisals) == [
        ("spt_visit", PLACE),
        ("spt_visit", POLICE),
    ]
    desk.fire(visit, "record_report_transmitted", HEAD, {"report_transmitted_on": "2027-06-01"})
    desk.fire(visit, "press_for_publication", HEAD)
    assert due(desk, visit) == {"state_reply": date(2027, 12, 1)}  # 6 months
    on(desk, "2029-03-10")  # years of waiting are normal
    desk.fire(visit, "record_advocacy", LIAISON, {"advocacy_step": "letter to the minister"})
    desk.fire(
        visit,
        "report_made_public",
        HEAD,
        {
            "report_published_on": "2029-03-10",
            "recommendations": ["Close the basement cells"],
            "recommendations_addressee": AUTHORITY,
        },
    )
    [recommendation] = [c for c in desk.children(visit) if c.workflow_id == "recommendation"]
    assert recommendation.data["source"] == "spt"
    desk.fire(visit, "record_npm_report", HEAD, {"npm_report_transmitted_on": "2029-04-02"})
    assert due(desk, visit) == {"npm_reply": date(2029, 10, 2), "state_reply": date(2027, 12, 1)}
    desk.fire(visit, "decide_npm_report_publication", HEAD, {"npm_report_published": True})
    desk.fire(visit, "send_npm_reply", HEAD)
    desk.fire(visit, "apply_special_fund", HEAD, {"special_fund_applied_on": "2029-05-01"})
    desk.fire(visit, "close", HEAD, {"outcome": "report public, project funded"})
    desk.assert_path(visit, "spt_visit_postponed_suspended_published")
    desk.verify()


def test_no_special_fund_application_while_the_spt_report_is_confidential(desk: Desk) -> None:
    visit = desk.start("spt_visit", COORDINATOR, {"visit_kind": "country"})
    desk.fire(visit, "record_dates", COORDINATOR, {"visit_starts_on": "2026-05-04"})
    desk.fire(visit, "send_information", COORDINATOR, {"information_topics": ["npm_budget"]})
    desk.fire(visit, "start_visit", COORDINATOR)
    desk.fire(
        visit, "end_visit", COORDINATOR, {"visit_ends_on": "2026-05-08", "places_seen": [PLACE]}
    )
    desk.fire(visit, "press_for_publication", HEAD)
    desk.fire(visit, "record_npm_report", HEAD, {"npm_report_transmitted_on": "2026-10-01"})
    refusal = desk.refused(
        visit, "apply_special_fund", HEAD, {"special_fund_applied_on": "2026-10-02"}
    )
    assert refusal.reason == "report_public: the SPT report is not public"


def test_a_terminated_spt_visit_ends_there(desk: Desk) -> None:
    visit = desk.start("spt_visit", HEAD, {"visit_kind": "follow_up"})
    desk.fire(visit, "terminate", HEAD, {"outcome": "the State withdrew its consent"})
    desk.assert_path(visit, "spt_visit_terminated")


def test_the_spt_advisory_year_repeats_every_year(desk: Desk) -> None:
    on(desk, "2026-01-05")
    year = desk.start("spt_advisory", HEAD, {"year_starts_on": "2026-01-01"})
    assert due(desk, year) == {"annual_report": date(2027, 1, 1)}
    desk.fire(year, "record_contact", MEMBER, {"activity": "confidential_contact"})
    on(desk, "2026-12-15")
    desk.fire(year, "share_annual_report", HEAD, {"report_reference": "Annual report 2026"})
    desk.fire(year, "close_year", HEAD)
    desk.assert_path(year, "spt_advisory_year")
    [following] = desk.children(year)
    assert (following.workflow_id, following.data["year_starts_on"]) == (
        "spt_advisory",
        "2027-01-01",
    )
    assert due(desk, following.id) == {"annual_report": date(2028, 1, 1)}


# -- special procedures and regional bodies -----------------------------------------------------


def test_a_special_procedure_visit_opens_recommendations_and_reprisal_follow_ups(
    desk: Desk,
) -> None:
    visit = desk.start(
        "sp_visit", MEMBER, {"body": "special_procedure", "mandate": "SR on torture"}
    )
    desk.fire(visit, "record_activity", MEMBER, {"activity": "advocacy_for_invitation"})
    scheduled = {"invitation_on": "2026-04-01", "visit_starts_on": "2026-09-14"}
    desk.fire(visit, "schedule", HEAD, scheduled)
    desk.fire(visit, "postpone", HEAD, {"postponement_reason": "elections"})
    desk.fire(visit, "schedule", HEAD, {**scheduled, "visit_starts_on": "2027-03-01"})
    desk.fire(visit, "start_visit", MEMBER)
    desk.fire(visit, "record_activity", MEMBER, {"activity": "briefing_during"})
    desk.fire(visit, "end_visit", MEMBER, {"visit_ends_on": "2027-03-10"})
    desk.fire(
        visit,
        "report_reprisal_risk",
        MEMBER,
        {"reprisal_place": HOSPITAL, "reprisal_known_on": "2027-03-12"},
    )
    desk.fire(
        visit,
        "report_published",
        HEAD,
        {
            "report_published_on": "2028-03-01",
            "recommendations": ["End solitary confinement of minors"],
            "recommendations_addressee": AUTHORITY,
        },
    )
    desk.fire(visit, "close", HEAD, {"outcome": "cited in the NPM's annual report"})
    desk.assert_path(visit, "sp_visit_followed")
    assert sorted(
        (c.workflow_id, c.data.get("origin") or c.data.get("source")) for c in desk.children(visit)
    ) == [("recommendation", "special_procedure"), ("reprisal", "special_procedure_visit")]


# -- the engine's deadline condition ----------------------------------------------------------

CONDITIONAL = """
id: conditional
version: 1
title: Conditional deadline
roles: {clerk: Clerk}
fields:
  session_start: {type: date}
states:
  open:
    initial: true
    deadlines:
      - {id: early, due: 1 day, when: "sesion_start"}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [clerk]}
"""


def test_a_deadline_condition_reading_an_undeclared_field_is_located() -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_text(CONDITIONAL, "conditional.yaml", registry)
    [problem] = caught.value.problems
    assert (problem.line, "undeclared field 'sesion_start'" in problem.message) == (12, True)


def test_the_shipped_settings_declare_the_engagement_defaults() -> None:
    defaults = {k: str(v) for k, v in Settings.default().deadlines.items()}
    assert {k: v for k, v in defaults.items() if k.split(".")[0] in ENGAGEMENT} == {
        "spt.state_reply": "6 months",
        "spt.npm_reply": "6 months",
        "spt.npm_information": "4 weeks",
        "npm.annual_report": "12 months",
        "cat.periodic_report": "4 years",
        "cat.followup_reply": "1 year",
        "cat.written_information": "8 weeks",
        "upr.stakeholder_submission": "6 months",
        "upr.stakeholder_submission_apr_may": "7 months",
        "upr.stakeholder_submission_oct_nov": "7 months",
        "upr.national_report": "12 weeks",
        "upr.documents_public": "6 weeks",
        "upr.recommendations_out": "48 hours",
        "upr.state_responses": "14 days",
        "upr.mid_term_report": "2 years",
    }
