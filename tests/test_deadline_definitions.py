"""Deadline mistakes in definitions and settings are reported at their file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from opcatflow.engine import DefinitionError, Engine, Problem, Registry, compile_text
from opcatflow.engine.settings import Settings, SettingsError

CASEFILE = (Path(__file__).parent / "definitions" / "deadlines" / "casefile.yaml").read_text()


def edit(old: str, new: str) -> str:
    assert old in CASEFILE, old
    return CASEFILE.replace(old, new, 1)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, "wf.yaml", Registry())
    return list(caught.value.problems)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("due: 10 working days", "due: 10 workdays", "malformed duration '10 workdays'"),
        ("due: 10 working days", "due: 2 days before entered", "would fall due before the state is entered"),
        ("due: 7 months before session_start", "due: 7 months before title", "deadline anchor 'title' is neither 'entered' nor a date field"),
        ("published: published_due", "published: title", "published date 'title' is not a date or datetime field"),
        ("reminders: [2 working days, 1 day]", "reminders: [1 month]", "reminder '1 month' is not shorter than the deadline '10 working days'"),
        ("reminders: [2 working days, 1 day]", "reminders: [1 day, 1 day]", "reminder '1 day' is listed twice"),
        ("every: 30 days", "every: monthly", "malformed duration 'monthly'"),
        ("    pauses: [reply]", "    pauses: [repyl]", "deadline 'repyl' does not span a state 'wait_for_party' fires from (open) (did you mean 'reply'?)"),
        ("    pauses: [reply]", "    pauses: [reply]\n    resumes: [reply]", "'wait_for_party' both pauses and resumes 'reply'"),
    ],
)  # fmt: skip
def test_deadline_problem_is_located(old: str, new: str, message: str) -> None:
    text = edit(old, new)
    problems = problems_of(text)
    assert [p.message for p in problems if message in p.message], [str(p) for p in problems]
    [problem] = [p for p in problems if message in p.message]
    assert problem.line == line_of(text, new.strip().splitlines()[-1].strip())


def test_pausing_on_a_transition_that_leaves_the_state_is_refused() -> None:
    text = edit(
        "    source: [open, escalated]\n    dest: done\n",
        "    source: [open, escalated]\n    dest: done\n    pauses: [reply]\n",
    )
    [problem] = problems_of(text)
    assert "'close' moves the case (to 'done'): pause and resume on transitions" in problem.message
    assert problem.line == len(text.splitlines()) - 1  # the pauses line


def test_an_escalation_the_scheduler_may_not_fire_is_located_at_on_due() -> None:
    text = edit("    roles: [clerk, scheduler]\n", "    roles: [clerk]\n")
    [problem] = problems_of(text)
    assert problem.message == (
        "trigger 'escalate' from state 'open' does not allow the role 'scheduler': add it to "
        "the transition's roles, or the escalation is always refused"
    )
    assert (problem.line, problem.column) == (line_of(text, "on_due: {trigger: escalate}"), 27)


def test_an_unknown_settings_key_fails_when_the_engine_opens(tmp_path: Path) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "casefile.yaml").write_text(
        edit("due: 30 days\n", "due: config:visit.factul_check\n")
    )
    with pytest.raises(DefinitionError) as caught:
        Engine.open(str(tmp_path / "x.db"), [folder], Registry())
    [problem] = caught.value.problems
    assert problem.message.startswith("no deadline key 'visit.factul_check' in the settings")
    assert "did you mean 'visit.factual_check'" in problem.message
    assert problem.line == line_of(CASEFILE, "due: 30 days")


def test_settings_keys_resolve_to_the_configured_durations() -> None:
    settings = Settings.from_text("deadlines: {visit.factual_check: 15 working days}\n")
    assert str(settings.deadlines["visit.factual_check"]) == "15 working days"
    assert str(settings.deadlines["complaint.acknowledge"]) == "7 days"  # default kept


def test_the_shipped_settings_declare_the_casework_defaults() -> None:
    engagement = {"spt", "npm", "cat", "upr"}  # tests/test_engagement.py checks those
    defaults = {
        k: str(v)
        for k, v in Settings.default().deadlines.items()
        if k.split(".")[0] not in engagement
    }
    assert defaults == {
        "complaint.acknowledge": "7 days",
        "complaint.feedback": "3 months",
        "complaint.stale": "2 years",
        "visit.internal_writeup": "3 working days",
        "visit.urgent_notification": "7 days",
        "visit.urgent_notification_reply": "28 days",
        "visit.factual_check": "10 working days",
        "visit.publication_target": "18 weeks",
        "visit.reprisal_decision": "2 working days",
        "recommendation.reply": "2 months",
        "recommendation.followup_check": "6 months",
        "reminder.due_soon_window": "30 days",
        "reprisal.notify_focal_point": "24 hours",
        "reprisal.initial_assessment": "5 working days",
        "reprisal.contact_check": "30 days",
    }


def test_settings_problems_are_all_located() -> None:
    text = (
        "calendar:\n"
        "  timezone: Europe/Pariss\n"
        "deadlines:\n"
        "  visit.factul_check: 3 wd\n"
        "  complaint.feedback: soon\n"
        "custom_deadlines:\n"
        "  complaint.acknowledge: 3 days\n"
        "colour: blue\n"
    )
    with pytest.raises(SettingsError) as caught:
        Settings.from_text(text, "npm.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "npm.yaml:8:9: unknown key 'colour'",
    ]
    text = text.replace("colour: blue\n", "")
    with pytest.raises(SettingsError) as caught:
        Settings.from_text(text, "npm.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "npm.yaml:2:13: unknown time zone 'Europe/Pariss' (use an IANA name)",
        "npm.yaml:4:23: unknown deadline key 'visit.factul_check' (did you mean 'visit.factual_check'?); keys of your own go under 'custom_deadlines'",
        "npm.yaml:5:23: malformed duration 'soon': expected '<number> <unit>' with a unit among hours, days, working days (wd), weeks, months, years, or 'config:<key>' for a duration set in the NPM's settings",
        "npm.yaml:7:26: 'complaint.acknowledge' is a known key: set it under 'deadlines'",
    ]


def test_an_unknown_holiday_country_is_located() -> None:
    with pytest.raises(SettingsError, match=r"npm.yaml:1:36: Country XX not available"):
        Settings.from_text("calendar: {timezone: UTC, country: XX}\n", "npm.yaml")


OBLIGATIONS = (Path(__file__).parent / "definitions" / "obligations" / "dossier.yaml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("        met_by: {trigger: answer}\n", "        on_due: {notify: late}\n",
         "'on_due.notify' was never sent and is gone: declare the message as an alert step, e.g. overdue_alerts: [{after: 0 days, to: [ROLE], template: late}]"),
        ("    scope: [working, waiting]\n    due: 10", "    scope: [working, wating]\n    due: 10",
         "unknown scope state 'wating' (did you mean 'waiting'?)"),
        ("    scope: [working, waiting]\n    due: 10", "    scope: [working, done]\n    due: 10",
         "state 'done' is final: a case there owes nothing"),
        ("    scope: [working, waiting]\n    due: 10", "    due: 10",
         "deadline 'reply' needs a 'scope': a list of states, or 'instance' (or declare it under the one state it spans)"),
        ("    met_by: {field: reply_on}", "    met_by: {field: reply_on}\n    every: 30 days",
         None),
        ("    overdue_alerts:\n      - {after: 0 days, to: [clerk], template: deadline_overdue}\n  - id: publication",
         "  - id: publication", "deadline 'reply' is owed by the State: declare who hears when it is overdue ('overdue_alerts')"),
        ("        met_by: {trigger: answer}\n", "        met_by: {trigger: anwser}\n",
         "unknown trigger 'anwser' (did you mean 'answer'?)"),
        ("    owed_by: un_body\n", "    owed_by: un_body\n    waivable_by: [head]\n",
         "a milestone is never overdue: 'waivable_by' has no use on it"),
        ("  received_on: {type: date}", "  received_on: {type: date, personal: true}",
         "field 'received_on' is personal: an obligation keeps the value it counts from, so it may not count from (or be met by) a personal field"),
        ("        waivable_by: [head]\n", "        waivable_by: [boss]\n",
         "unknown role 'boss'"),
        ("assignees: assigned_to", "assignees: received_on", "field 'received_on' is date, not text or a list of text"),
    ],
)  # fmt: skip
def test_an_obligation_mistake_is_located(old: str, new: str, message: str | None) -> None:
    assert old in OBLIGATIONS, old
    text = OBLIGATIONS.replace(old, new, 1)
    if message is None:  # a repeating deadline with 'met_by' is fine
        compile_text(text, "wf.yaml", Registry())
        return
    found = problems_of(text)
    assert message in [p.message for p in found], [str(p) for p in found]


def test_every_without_met_by_and_a_notification_at_due_are_refused_with_their_hint() -> None:
    text = (
        OBLIGATIONS.replace("    met_by: {field: reply_on}", "    every: 30 days", 1)
        + "notifications:\n  - {on: {deadline: reply, at: due}, to: [clerk], template: t}\n"
    )
    messages = [p.message for p in problems_of(text)]
    assert (
        "deadline 'reply' repeats: say what meets each occurrence ('met_by'), the next one "
        "counts from that day"
    ) in messages
    assert any(m.startswith("a message for an overdue deadline is one of its 'overdue_alerts'")
               for m in messages)  # fmt: skip
