"""The ways a visit really goes (issue 21), with a fresh engine between steps, on both
backends: a report kept confidential, a visit without factual check (the head's decision, or
the settings' default for its kind), a visit suspended and terminated, access denied and
escalated, the decision on a reprisal follow-up, and a reprisal follow-up visit's light path."""

from __future__ import annotations

import pytest
from casework import COORDINATOR, HEAD, LIAISON, MEMBER, PLACE, Desk, recorded
from registerkit import AUTHORITY, DIALLO

from opcatflow.engine import FrozenClock
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings, SettingsError

RECOMMENDATION = "Give every detainee at least one hour outdoors each day."


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def drafting(desk: Desk, kind: str = "regular", interviewed: int = 0) -> str:
    """A visit by NPM members only, its report being drafted."""
    visit = desk.start("visit", COORDINATOR, {"kind": kind, "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    ended = {"ended_on": "2026-03-04", "people_interviewed": interviewed}
    desk.fire(visit, "end_visit", MEMBER, ended)
    desk.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "Overcrowding in wing B."})
    return visit


def due(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.engine() as eng:
        return [(f.instance_id, f.deadline, f.kind) for f in Scheduler(eng).tick().firings]


def test_a_confidential_report_is_followed_up_and_closed(desk: Desk) -> None:
    visit = drafting(desk)
    desk.fire(visit, "send_for_factual_check", HEAD, {"report_addressee": AUTHORITY})
    desk.fire(visit, "adopt_final_report", HEAD, {"report_recommendations": [RECOMMENDATION]})
    refused = desk.refused(visit, "keep_confidential", HEAD)
    assert "confidential_because" in refused.reason
    kept = desk.fire(
        visit,
        "keep_confidential",
        HEAD,
        {"confidential_because": "law", "confidentiality_note": "Reports on psychiatric units."},
    )
    assert kept.state == "follow_up"
    [recommendation] = desk.children(visit)
    assert recommendation.data["text"] == RECOMMENDATION
    desk.fire(visit, "close", HEAD, {"outcome": "Followed up with the ministry."})
    desk.assert_path(visit, "visit_kept_confidential")
    # the publication target ends with the decision, neither met nor left owed
    with desk.engine() as eng:
        [target] = [o for o in eng.obligations(visit) if o.deadline == "publication_target"]
    assert target.status == "cancelled"
    desk.verify()


def test_the_head_decides_a_visit_without_factual_check(desk: Desk) -> None:
    visit = drafting(desk)
    refused = desk.refused(visit, "adopt_final_report", HEAD, {"report_addressee": AUTHORITY})
    assert refused.reason == (
        "factual_check_waived: the draft goes to the authorities for a factual check first "
        "(the settings' visit.factual_check_by_kind says so for a regular visit): send it "
        "(send_for_factual_check), or the head decides, with a reason, that it does not "
        "(decide_factual_check)"
    )
    waived = {"factual_check_wanted": False}
    refused = desk.refused(visit, "decide_factual_check", COORDINATOR, waived)
    refused = desk.refused(visit, "decide_factual_check", HEAD, waived)
    assert "factual_check_reason" in refused.reason
    reason = {"factual_check_reason": "Thematic visit: findings already discussed on site."}
    desk.fire(visit, "decide_factual_check", HEAD, {**waived, **reason})
    refused = desk.refused(visit, "send_for_factual_check", HEAD, {"report_addressee": AUTHORITY})
    assert refused.reason.startswith(
        "factual_check_chosen: no factual check for this visit (the head decided so for this visit)"
    )
    adopted = desk.fire(
        visit,
        "adopt_final_report",
        HEAD,
        {"report_addressee": AUTHORITY, "report_recommendations": [RECOMMENDATION]},
    )
    assert adopted.state == "final_report"
    assert [c.data["text"] for c in desk.children(visit)] == [RECOMMENDATION]
    desk.fire(visit, "record_consent", COORDINATOR, recorded())
    desk.fire(visit, "publish", HEAD)
    desk.fire(visit, "start_follow_up", COORDINATOR)
    desk.fire(visit, "close", HEAD, {"outcome": "Done."})
    desk.assert_path(visit, "visit_without_factual_check")


def test_the_settings_say_which_kinds_of_visit_skip_the_factual_check(
    db_url: str, clock: FrozenClock
) -> None:
    npm = Settings.from_text("visit:\n  factual_check_by_kind: {ad_hoc: false}\n")
    desk = Desk(db_url, clock, npm)
    ad_hoc, regular = drafting(desk, "ad_hoc"), drafting(desk, "regular")
    addressed = {"report_addressee": AUTHORITY}
    assert desk.fire(ad_hoc, "adopt_final_report", HEAD, addressed).state == "final_report"
    assert desk.refused(regular, "adopt_final_report", HEAD, addressed).reason.startswith(
        "factual_check_waived:"
    )
    # the head's decision for one visit wins over the default for its kind
    decided = {"factual_check_wanted": True, "factual_check_reason": "Deaths in custody."}
    other = drafting(desk, "ad_hoc")
    desk.fire(other, "decide_factual_check", HEAD, decided)
    assert desk.refused(other, "adopt_final_report", HEAD, addressed).reason.startswith(
        "factual_check_waived: the draft goes to the authorities for a factual check first "
        "(the head decided so for this visit)"
    )
    assert desk.fire(other, "send_for_factual_check", HEAD, addressed).state == "factual_check"


def test_a_visit_is_suspended_resumed_and_terminated_with_reasons(desk: Desk) -> None:
    visit = desk.start("visit", COORDINATOR, {"kind": "reactive", "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    assert "suspension_reason" in desk.refused(visit, "suspend", COORDINATOR).reason
    desk.fire(visit, "suspend", COORDINATOR, {"suspension_reason": "Riot in wing C."})
    desk.fire(visit, "resume", HEAD)
    desk.fire(visit, "suspend", HEAD, {"suspension_reason": "Lockdown of the whole prison."})
    assert desk.refused(visit, "cancel", HEAD, {"cancellation_reason": "-"})
    refused = desk.refused(visit, "terminate", COORDINATOR, {"termination_reason": "-"})
    assert "role" in refused.reason
    why = "The management refused any further access."
    done = desk.fire(visit, "terminate", HEAD, {"termination_reason": why})
    assert (done.data["suspension_reason"], done.data["termination_reason"]) == (
        "Lockdown of the whole prison.",
        why,
    )
    desk.assert_path(visit, "visit_suspended_then_terminated")
    desk.verify()


def test_access_denied_is_kept_and_escalated_to_the_authority(desk: Desk) -> None:
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    denied = {"what": "The disciplinary cells", "denied_by": "Duty governor"}
    desk.fire(
        visit,
        "record_access_denied",
        MEMBER,
        {
            "access_denied": {"append": [{**denied, "denied_at": "2026-03-02T10:30:00+00:00"}]},
            "report_addressee": AUTHORITY,
        },
    )
    [urgent] = desk.children(visit)
    assert (urgent.workflow_id, urgent.state) == ("recommendation", "issued")
    assert (urgent.data["urgent"], urgent.data["addressee"], urgent.data["places"]) == (
        True,
        AUTHORITY,
        [PLACE],
    )
    assert urgent.data["text"] == (
        "Grant the visiting team the access it was denied: The disciplinary cells"
    )
    assert desk.fire(urgent.id, "send", LIAISON).state == "awaiting_urgent_reply"
    # kept for the reports: entries are added, never edited
    kept = desk.get(visit).data["access_denied"]
    assert kept == [{"n": 1, **denied, "denied_at": "2026-03-02T10:30:00+00:00"}]
    also = {"what": "Medical files", "denied_by": "Nurse", "denied_at": "2026-03-02T12:00:00Z"}
    edit = {"edit": [{"n": 1, "what": "Nothing"}], "append": [also]}
    rewritten = {"access_denied": edit, "report_addressee": AUTHORITY}
    assert desk.refused(visit, "record_access_denied", HEAD, rewritten).kind == "data"
    # each denial is escalated once, on its own
    same = {"access_denied": kept, "report_addressee": AUTHORITY}
    assert desk.refused(visit, "record_access_denied", HEAD, same).reason == (
        "one_denial_appended: 0 new denials of access: append exactly one to access_denied "
        "(each is escalated to the authority on its own)"
    )
    at = "2026-03-02T11:00:00+00:00"
    two = [{"what": "Register", "denied_by": "Clerk", "denied_at": at}] * 2
    both = {"access_denied": {"append": [{"n": 2, **two[0]}, {"n": 3, **two[1]}]}}
    assert desk.refused(visit, "record_access_denied", HEAD, {**same, **both}).reason.startswith(
        "one_denial_appended: 2 new denials"
    )
    one = {"access_denied": {"append": [two[0]]}, "report_addressee": AUTHORITY}
    desk.fire(visit, "record_access_denied", HEAD, one)
    assert len(desk.children(visit)) == 2


def test_after_interviews_the_head_is_prompted_to_decide_on_a_reprisal_follow_up(
    desk: Desk,
) -> None:
    visit = drafting(desk, interviewed=12)
    assert desk.children(visit) == []  # no case opened behind the head's back
    desk.later(days=6)
    assert due(desk).count((visit, "reprisal_decision", "alert")) == 2  # head, coordinator
    assert "reprisal_follow_up_reason" in desk.refused(visit, "no_reprisal_follow_up", HEAD).reason
    desk.fire(visit, "open_reprisal_follow_up", COORDINATOR)
    [reprisal] = desk.children(visit)
    assert (reprisal.workflow_id, reprisal.data["origin"], reprisal.data["reported_on"]) == (
        "reprisal",
        "npm_visit",
        "2026-03-04",
    )
    assert desk.get(visit).data["reprisal_follow_up_decision"] == "opened"
    reason = {"reprisal_follow_up_reason": "-"}
    assert desk.refused(visit, "no_reprisal_follow_up", HEAD, reason)  # decided once
    desk.later(days=2)
    assert [d for d in due(desk) if d[1] == "reprisal_decision"] == []
    with desk.engine() as eng:
        [prompt] = [o for o in eng.obligations(visit) if o.deadline == "reprisal_decision"]
    assert prompt.status == "met"


def test_a_reprisal_follow_up_visit_closes_after_its_debrief(desk: Desk) -> None:
    reprisal = desk.start("reprisal", HEAD, {"origin": "npm_visit", "reported_on": "2026-03-01"})
    desk.fire(reprisal, "notify_focal_point", HEAD)
    desk.fire(reprisal, "assess_risk", HEAD, {"risk_level": "high", "risk_assessment": "-"})
    desk.fire(
        reprisal,
        "plan_follow_up_visit",
        HEAD,
        {"measures": ["group_interviews"], "place": PLACE},
    )
    [visit] = [c.id for c in desk.children(reprisal)]
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [DIALLO]})
    desk.fire(visit, "start_visit", MEMBER)
    desk.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-03", "people_interviewed": 9})
    desk.later(days=6)
    assert [d for d in due(desk) if d[0] == visit and d[1] == "reprisal_decision"] == []
    done = desk.fire(visit, "close", HEAD, {"outcome": "Nobody reported any reprisal."})
    assert done.state == "closed"
    assert desk.children(visit) == []
    desk.assert_path(visit, "visit_reprisal_follow_up")
    # an ordinary visit does not take that path
    other = drafting(desk)
    assert desk.refused(other, "close", HEAD, {"outcome": "-"})


def test_a_kind_of_visit_the_settings_do_not_know_is_refused_where_it_is_written() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_text("visit:\n  factual_check_by_kind:\n    adhoc: false\n", "npm.yaml")
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("npm.yaml", 3)
    assert problem.message.startswith("Input should be 'regular', 'ad_hoc'")


def test_the_npm_accepts_one_correction_rejects_another_and_keeps_the_authorities_comments(
    desk: Desk,
) -> None:
    visit = drafting(desk)
    desk.fire(visit, "send_for_factual_check", HEAD, {"report_addressee": AUTHORITY})
    for text in ("412 people were held that day, not 450.", "No one was held in isolation."):
        desk.fire(
            visit, "record_correction", LIAISON, {"correction": text, "correction_to": "fact"}
        )
    comment = {
        "authority_comment": "The ministry disputes that the cells are overcrowded.",
        "authority_comment_on": "finding",
    }
    desk.fire(visit, "record_authority_comment", LIAISON, comment)
    refused = desk.refused(visit, "adopt_final_report", HEAD)
    assert refused.reason == (
        "corrections_decided: correction(s) 1, 2 not decided yet: accept or reject each "
        "(decide_correction) before adopting the report"
    )
    reject = {"correction_n": 2, "correction_decision": "rejected"}
    assert desk.refused(visit, "decide_correction", HEAD, reject).reason == (
        "correction_decidable: rejecting correction 2 needs its reason (correction_reason)"
    )
    assert desk.refused(visit, "decide_correction", LIAISON, {**reject, "correction_reason": "-"})
    why = "Two people were in the isolation unit on the day of the visit (register p. 14)."
    desk.fire(visit, "decide_correction", COORDINATOR, {**reject, "correction_reason": why})
    accept = {"correction_n": 1, "correction_decision": "accepted"}
    desk.fire(visit, "decide_correction", HEAD, accept)
    again = {"correction_n": 1, "correction_decision": "rejected", "correction_reason": "-"}
    assert desk.refused(visit, "decide_correction", HEAD, again).reason == (
        "correction_decidable: correction 1 was already accepted by r.haddad on 2026-03-02: "
        "a decision is taken once"
    )
    assert desk.refused(visit, "decide_correction", HEAD, {**accept, "correction_n": 7}).reason == (
        "correction_decidable: no correction number 7 (corrections: 1, 2)"
    )
    # nobody rewrites a decision by writing the entries: only the engine writes them
    rewrite = {"corrections": {"edit": [{"n": 2, "decision": "accepted"}]}}
    assert desk.refused(
        visit, "record_meeting", LIAISON, {**rewrite, "factual_check_meeting_on": "2026-03-09"}
    )
    adopted = desk.fire(visit, "adopt_final_report", HEAD)
    kept = {
        e["n"]: (e["decision"], e["reason"], e["decided_by"]) for e in adopted.data["corrections"]
    }
    assert kept == {1: ("accepted", None, "r.haddad"), 2: ("rejected", why, "s.nakamura")}
    assert [(c["on_what"], c["text"], c["by"]) for c in adopted.data["authority_comments"]] == [
        ("finding", comment["authority_comment"], "j.moreau")
    ]
    desk.fire(visit, "record_consent", COORDINATOR, recorded())
    published = desk.fire(visit, "publish", HEAD, {"response_published": True})
    assert published.data["authority_comments"][0]["on_what"] == "finding"
    desk.verify()
