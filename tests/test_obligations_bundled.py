"""The bundled workflows' obligations, run through the scheduler and the outbox.

One test per obligation the NPM or the State owes, generated from the bundled YAML: the case
is put in the deadline's scope with its anchor dates set, the scheduler runs past the due
date, and the overdue message must be queued, its template rendering the last day. Then
scenarios with dates computed by hand: a reprisal allegation (24 hours from its time of
receipt), a complaint entered late, and a UPR submission sent early, then the review
postponed and rescheduled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from helpers import outbox_of

from opcatflow.engine import Engine, FrozenClock, Instance, TransitionEvent
from opcatflow.engine.agenda import agenda
from opcatflow.engine.audit import GENESIS, STARTED, make_record
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import applies
from opcatflow.engine.definition import FieldType
from opcatflow.engine.loader import load_catalog
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.scopes import Declared
from opcatflow.notifications import OutboxWriter
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.templates import TemplateSet
from opcatflow.workflows import BUNDLED, registry

CATALOG = load_catalog([BUNDLED], registry)
ROLES = sorted({r for wf in CATALOG for r in wf.definition.roles})
DIRECTORY = "people:\n" + "".join(
    f"  - {{id: {r}1, name: {r.title()} One, email: {r}1@npm.example, roles: [{r}], "
    "channel: log}\n"
    for r in ROLES
)
T0 = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)  # before every due date the cases below get


def owed_obligations() -> list[tuple[str, str]]:
    return [
        (wf.id, d.spec.id)
        for wf in CATALOG
        for d in wf.deadlines.declared.values()
        if d.obligation and d.spec.owed_by in ("npm", "state")
    ]


@pytest.fixture
def bundled(db_url: str) -> Iterator[Engine]:
    writer = OutboxWriter(parse_directory(DIRECTORY, "<directory>"))
    engine = Engine.open(db_url, [BUNDLED], registry, clock=FrozenClock(T0), hooks=[writer])
    with engine:
        yield engine


def sample(wf: CompiledWorkflow, declared: Declared, day: str, flag: bool) -> dict[str, Any]:
    """Data with every scalar field set (dates on ``day``), but the fields that meet the
    obligation and the assignees (the roles then receive the alert)."""
    skip = {m.field for m in declared.spec.met_by} | {wf.definition.assignees}
    data: dict[str, Any] = {}
    for name, spec in wf.definition.fields.items():
        if name in skip or spec.personal:
            continue
        value = {
            FieldType.DATE: day,
            FieldType.DATETIME: f"{day}T10:00:00+00:00",
            FieldType.BOOLEAN: flag,
            FieldType.INTEGER: 1,
            FieldType.STRING: "x",
            FieldType.TEXT: "x",
            FieldType.ENUM: (spec.values or [None])[0],
        }.get(spec.type)
        if value is not None:
            data[name] = value
    return data


def place(engine: Engine, wf: CompiledWorkflow, state: str, data: dict[str, Any]) -> str:
    """A case of ``wf`` started straight in ``state`` (a start record, then the hooks of a
    start: its obligations are created as the engine creates them)."""
    case = str(uuid.uuid4())
    now = engine.clock.now()
    record = make_record(
        instance_id=case, seq=1, at=now, actor="test", role="head", workflow_id=wf.id,
        workflow_version=wf.version, trigger="start", from_state=None, to_state=state,
        outcome=STARTED, reason=None, changes="{}", prev_hash=GENESIS,
    )  # fmt: skip
    instance = Instance(
        id=case, workflow_id=wf.id, workflow_version=wf.version, state=state, data=data,
        version=1, parent_id=None, created_at=now, updated_at=now, state_entered_at=now,
        audit_seq=1, audit_head=record.hash,
    )  # fmt: skip
    with engine.store.write() as uow:
        uow.instances.insert(instance)
        uow.audit.append(record)
        event = TransitionEvent(
            workflow=wf, instance=instance, previous=None, trigger="start", actor="test",
            role="head", at=now, reason=None, entered=state, left=None,
        )  # fmt: skip
        engine._writes._run_hooks(uow, event)
    return case


def test_every_obligation_of_the_npm_or_the_state_sends_its_overdue_message(
    bundled: Engine,
) -> None:
    cases = owed_obligations()
    assert len(cases) >= 20
    for workflow, deadline in cases:  # one engine for all: compiling the catalog is the cost
        check_overdue_message(bundled, workflow, deadline)


def check_overdue_message(eng: Engine, workflow: str, deadline: str) -> None:
    where = f"{workflow}.{deadline}"
    clock = eng.clock
    assert isinstance(clock, FrozenClock)
    clock.set(T0)
    wf = eng.workflow(workflow)
    declared = wf.deadlines.get(deadline)
    assert declared is not None
    scope = declared.states or frozenset(n for n in wf.definition.states if n not in wf.finals)
    state = next(n for n in wf.definition.states if n in scope)
    candidates = [
        sample(wf, declared, day, flag)
        for day in ("2026-03-05", "2026-10-05", "2026-05-05")  # a season each (UPR sessions)
        for flag in (False, True)
    ]
    data = next(d for d in candidates if applies(declared.spec, d))
    case = place(eng, wf, state, data)
    [row] = [o for o in eng.obligations(case) if o.deadline == deadline]
    assert (row.status, row.due_at > T0) == ("pending", True), where
    assert row.last_day is not None
    clock.set(row.due_at + timedelta(minutes=1))
    Scheduler(eng).tick()
    [after] = [o for o in eng.obligations(case) if o.id == row.id]
    assert after.status == "due", where
    messages = [m for m in outbox_of(eng, case) if m.event == f"{workflow}.overdue.{deadline}"]
    assert messages, f"no overdue message for {where}"
    payload = messages[0].payload
    rendered = TemplateSet([]).render(payload["template"], "en", payload["context"])
    assert row.last_day.isoformat() in rendered.subject + rendered.text, where
    listed = agenda(eng, now=clock.now(), overdue_only=True, limit=100_000)
    assert (case, deadline, row.last_day) in {
        (e.instance_id, e.deadline, e.last_day) for e in listed
    }


def outbox_events(engine: Engine, case: str) -> list[tuple[str, str, str]]:
    rows = outbox_of(engine, case)
    return [
        (r.event, r.recipient, r.payload["context"]["event"]["due_on"])
        for r in rows
        if ".overdue." in r.event
    ]


def test_the_reprisal_focal_point_alert_comes_24_hours_after_the_allegation(
    bundled: Engine,
) -> None:
    clock = bundled.clock
    assert isinstance(clock, FrozenClock)
    clock.set(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # entered at 12:00 UTC
    case = bundled.start(
        "reprisal",
        actor="cw",
        role="caseworker",
        data={
            "origin": "npm_visit",
            "reported_on": "2026-03-02",
            "received_at": "2026-03-02T10:15:00+01:00",  # 09:15 UTC
        },
    ).id
    [notify] = [o for o in bundled.obligations(case) if o.deadline == "notify_focal_point"]
    assert (notify.due_at, notify.anchor) == (
        datetime(2026, 3, 3, 9, 15, tzinfo=UTC), "2026-03-02T10:15:00+01:00",
    )  # fmt: skip
    clock.set(datetime(2026, 3, 3, 9, 14, 59, tzinfo=UTC))
    assert [f.kind for f in Scheduler(bundled).tick().firings] == ["reminder"]  # 4 hours before
    assert outbox_events(bundled, case) == []
    clock.set(datetime(2026, 3, 3, 9, 15, tzinfo=UTC))  # 24 hours after receipt, to the second
    firings = [(f.deadline, f.kind, f.due_at) for f in Scheduler(bundled).tick().firings]
    assert firings == [
        ("notify_focal_point", "due", datetime(2026, 3, 3, 9, 15, tzinfo=UTC)),
        ("notify_focal_point", "alert", datetime(2026, 3, 3, 9, 15, tzinfo=UTC)),
    ]
    assert outbox_events(bundled, case) == [
        ("reprisal.overdue.notify_focal_point", "caseworker1", "2026-03-03"),
        ("reprisal.overdue.notify_focal_point", "head1", "2026-03-03"),
    ]


def test_a_complaint_entered_late_counts_from_its_receipt_and_is_overdue_at_once(
    bundled: Engine,
) -> None:
    clock = bundled.clock
    assert isinstance(clock, FrozenClock)
    clock.set(datetime(2025, 12, 2, 9, 0, tzinfo=UTC))
    # received Friday 21 November, typed in Tuesday 2 December: 7 days from receipt end on
    # Friday 28 November (not 9 December)
    started = bundled.start_result(
        "complaint",
        actor="in",
        role="intake",
        data={"source": "staff", "channel": "mail", "received_on": "2025-11-21"},
    )
    case = started.instance.id
    [ack] = [o for o in bundled.obligations(case) if o.deadline == "acknowledge"]
    assert (ack.status, ack.last_day) == ("due", date(2025, 11, 28))
    assert "its last day was 2025-11-28" in started.notices[0]
    assert outbox_events(bundled, case) == [
        ("complaint.overdue.acknowledge", "intake1", "2025-11-28")
    ]
    # acknowledged on 3 December: met 5 days late
    clock.set(datetime(2025, 12, 3, 9, 0, tzinfo=UTC))
    bundled.fire(case, "acknowledge", actor="in", role="intake")
    [ack] = [o for o in bundled.obligations(case) if o.deadline == "acknowledge"]
    assert (ack.status, ack.days_late, ack.met_by) == ("met", 5, "field:acknowledged_on")


def test_a_upr_submission_sent_early_is_met_and_a_reschedule_does_not_owe_it_again(
    bundled: Engine,
) -> None:
    clock = bundled.clock
    assert isinstance(clock, FrozenClock)
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    # a January session: the submission is due 6 months before 25 January 2027, 25 July 2026
    case = bundled.start(
        "upr_cycle", actor="m", role="member", data={"session_start": "2027-01-25"}
    ).id
    [sub] = [o for o in bundled.obligations(case) if o.deadline == "stakeholder_submission"]
    assert (sub.status, sub.last_day) == ("pending", date(2026, 7, 25))
    clock.set(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
    bundled.fire(case, "submit", actor="h", role="head", data={"submission_reference": "R1"})
    [sub] = [o for o in bundled.obligations(case) if o.deadline == "stakeholder_submission"]
    assert (sub.status, sub.days_late, sub.met_by) == ("met", 0, "field:submitted_on")
    clock.set(datetime(2026, 7, 1, 9, 0, tzinfo=UTC))
    bundled.fire(case, "postpone", actor="m", role="member", data={"postponement_reason": "moved"})
    bundled.fire(case, "reschedule", actor="m", role="member", data={"session_start": "2027-05-03"})
    assert bundled.get(case).state == "submitted"  # the submission stands (upr_cycle v5)
    mine = [o for o in bundled.obligations(case) if o.deadline.startswith("stakeholder")]
    assert [(o.deadline, o.occurrence, o.status) for o in mine] == [
        ("stakeholder_submission", 1, "met")
    ]
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    Scheduler(bundled).tick()
    listed = agenda(bundled, now=clock.now(), overdue_only=True)
    assert [e.deadline for e in listed if e.deadline.startswith("stakeholder")] == []
    assert [e for e in outbox_events(bundled, case) if "stakeholder" in e[0]] == []


def test_every_template_the_bundled_workflows_name_exists_in_english_french_and_spanish() -> None:
    from opcatflow.notifications.check import check_catalog

    assert check_catalog(CATALOG, TemplateSet([]), ["en", "es", "fr"]) == []
