"""Minimums (`not_before`): an early fact is recorded with a notice and an audited `early`
record (`on_early: warn`), or refused (`on_early: refuse`); never owed nor overdue. Both
backends; mistakes located by `validate`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from casework import HEAD, Desk
from casework import MEMBER as MEMBER_WHO

from opcatflow.engine import DefinitionError, Engine, FrozenClock, Registry, compile_text
from opcatflow.engine.agenda import agenda
from opcatflow.engine.errors import InvalidData, TransitionRefused
from opcatflow.engine.settings import Settings, SettingsError

MINIMUMS = Path(__file__).parent / "definitions" / "minimums"
REVIEW = (MINIMUMS / "review.yaml").read_text()
PARIS = Settings.from_text("calendar: {timezone: Europe/Paris}\n")
MEMBER = {"actor": "ana", "role": "member"}


def test_an_early_report_is_recorded_with_a_notice_and_an_early_record(db_url: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    with Engine.open(db_url, [MINIMUMS], Registry(), clock=clock, settings=PARIS) as engine:
        early = engine.start("review", data={"review_held_on": "2026-03-02"}, **MEMBER).id
        on_time = engine.start("review", data={"review_held_on": "2026-03-02"}, **MEMBER).id
        assert agenda(engine, now=clock.now()) == []  # a minimum is never owed nor listed
        clock.set(datetime(2026, 3, 10, 9, tzinfo=UTC))  # entered later, with the real date
        result = engine.fire_result(early, "adopt", data={"reported_on": "2026-03-03"}, **MEMBER)
        assert result.instance.state == "adopted"  # the fact stands
        [notice] = result.notices
        assert notice.startswith("early: 'Report adopted at least 48 hours after the review'")
        assert "2026-03-04 00:00 (Europe/Paris)" in notice
        [flag] = [r for r in engine.history(early) if r.outcome == "early"]
        assert flag.trigger == "report_not_before"
        assert flag.reason is not None
        assert "48 hours after review_held_on" in flag.reason
        fine = engine.fire_result(on_time, "adopt", data={"reported_on": "2026-03-04"}, **MEMBER)
        assert fine.notices == ()
        assert not [r for r in engine.history(on_time) if r.outcome == "early"]


def test_an_early_hearing_is_refused_and_audited(db_url: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    with Engine.open(db_url, [MINIMUMS], Registry(), clock=clock, settings=PARIS) as engine:
        case = engine.start("review", data={"review_held_on": "2026-03-02"}, **MEMBER).id
        clock.set(datetime(2026, 3, 11, 22, 59, tzinfo=UTC))  # 11 March, 23:59 in Paris
        with pytest.raises(TransitionRefused) as refused:
            engine.fire(case, "hear", **MEMBER)
        assert "too early" in str(refused.value)
        assert "2026-03-12 00:00 (Europe/Paris)" in str(refused.value)
        assert [r.outcome for r in engine.history(case)][-1] == "refused"
        clock.set(datetime(2026, 3, 11, 23, 0, tzinfo=UTC))  # 12 March has begun in Paris
        assert engine.fire_result(case, "hear", **MEMBER).notices == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("        met_by: {field: reported_on}\n", "", "say what may not happen too early"),
        ("on_early: refuse", "on_early: refuse\n        overdue_alerts: [{after: 0 days, to: [member], template: x}]", "'overdue_alerts' has no use on it"),
        ("not_before: 48 hours after review_held_on", "not_before: 48 hours after reported_onn", "minimum anchor 'reported_onn' is neither"),
        ("not_before: 10 days after entered", "not_before: 10 days after entered\n        due: 20 days", "give exactly one of 'due'"),
    ],
)  # fmt: skip
def test_a_minimum_mistake_is_located(old: str, new: str, message: str) -> None:
    assert old in REVIEW
    text = REVIEW.replace(old, new, 1)
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, "review.yaml", Registry())
    found = [p for p in caught.value.problems if message in p.message]
    assert found, [str(p) for p in caught.value.problems]
    assert found[0].line > 10


STATUTE = "minimums: {recommendation.reply: 1 month}\n"


def test_a_period_below_its_statutory_minimum_is_refused_per_case(db_url: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    npm = Settings.from_text(STATUTE)
    with Engine.open(db_url, [MINIMUMS], Registry(), clock=clock, settings=npm) as engine:
        with pytest.raises(InvalidData) as short:
            engine.start("review", data={"reply_period": "30 days"}, **MEMBER)
        assert "reply_period: 30 days is shorter than its minimum of 1 month" in str(short.value)
        with pytest.raises(InvalidData, match="malformed"):
            engine.start("review", data={"reply_period": "soon"}, **MEMBER)
        case = engine.start("review", data={"reply_period": "6 Weeks"}, **MEMBER)
        assert case.data["reply_period"] == "6 weeks"
        with pytest.raises(TransitionRefused, match="2 weeks is shorter than its minimum"):
            engine.fire(case.id, "set_period", data={"reply_period": "2 weeks"}, **MEMBER)
        assert [r.outcome for r in engine.history(case.id)][-1] == "refused"
        engine.fire(case.id, "set_period", data={"reply_period": "1 month"}, **MEMBER)
    # without a statutory minimum, the key's configured duration (2 months) is the floor
    with (
        Engine.open(db_url, [MINIMUMS], Registry(), clock=clock) as engine,
        pytest.raises(InvalidData, match="shorter than its minimum of 2 months"),
    ):
        engine.start("review", data={"reply_period": "6 weeks"}, **MEMBER)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (f"deadlines:\n  recommendation.reply: 30 days\n{STATUTE}", 2, 25, "recommendation.reply is 30 days, shorter than its statutory minimum of 1 month"),
        ("minimums:\n  recommendation.reply: 3 months\n", 2, 25, "the shipped default is 2 months"),
        ("minimums:\n  recommendation.replies: 1 month\n", 2, 27, "did you mean 'recommendation.reply'"),
    ],
)  # fmt: skip
def test_a_settings_value_below_its_minimum_is_refused_at_load(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_text(text, "npm.yaml")
    [problem] = caught.value.problems
    assert message in problem.message
    assert (problem.path, problem.line, problem.column) == ("npm.yaml", line, column)
    assert Settings.from_text(f"deadlines:\n  recommendation.reply: 5 weeks\n{STATUTE}")


def test_a_upr_report_recorded_before_48_hours_after_the_review_is_flagged(
    db_url: str, clock: FrozenClock
) -> None:
    desk = Desk(db_url, clock)
    clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    cycle = desk.start("upr_cycle", MEMBER_WHO, {"cycle": 5, "session_number": 54,
                                                 "session_start": "2027-01-25"})  # fmt: skip
    desk.fire(cycle, "submit", HEAD, {"submission_reference": "NPM-UPR5"})
    clock.set(datetime(2027, 1, 25, 9, tzinfo=UTC))
    desk.fire(cycle, "open_dialogue", MEMBER_WHO)
    desk.fire(cycle, "hold_review", MEMBER_WHO, {"review_held_on": "2027-01-27"})
    with desk.engine() as engine:
        result = engine.fire_result(
            cycle, "record_report", actor=MEMBER_WHO[0], role=MEMBER_WHO[1],
            data={"report_adopted_on": "2027-01-28", "recommendations": ["Fund the NPM"]},
        )  # fmt: skip
        assert result.instance.state == "awaiting_adoption"  # recorded: it is what happened
        assert [n[:40] for n in result.notices] == ["early: 'Working group report no sooner t"]
        assert [r.trigger for r in engine.history(cycle) if r.outcome == "early"] == [
            "recommendations_out"
        ]
