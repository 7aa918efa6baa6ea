"""The outbox hook: messages are written in the transaction of the change that causes them,
routed to people, addresses and webhooks, with personal data redacted per recipient."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notify_helpers import SECRET, make_directory, notice_engine, rows

from opcatflow.engine import DeadlineEvent, FireResult, FrozenClock, UnitOfWork
from opcatflow.notifications.model import DEAD, PENDING, ROUTE, STATUSES, WEBHOOK
from opcatflow.notifications.redaction import WITHHELD

PERSONAL = {"person": "Ana Pereira", "story": "Beaten in cell 14", "relatives": ["Rui Pereira"]}


def test_starting_an_instance_writes_one_message_per_person_holding_the_role(
    db_url: str, clock: FrozenClock
) -> None:
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk", data={"place": "Prison A"})
        found = rows(engine)
    assert sorted((m.channel, m.recipient, m.event) for m in found) == [
        ("email", "h.one", "notice.enter.open"),
        ("email", "h.two", "notice.enter.open"),
    ]
    first = next(m for m in found if m.recipient == "h.two")
    assert (first.status, first.attempts, first.instance_id) == (PENDING, 0, instance.id)
    assert first.payload["locale"] == "fr"
    assert first.payload["to"] == {"name": "Head Two", "address": "head2@npm.example"}
    assert first.payload["context"]["data"]["place"] == "Prison A"
    assert first.next_attempt_at == clock.now()
    assert len({m.idempotency_key for m in found}) == 2


def test_a_rolled_back_transition_leaves_no_message(db_url: str, clock: FrozenClock) -> None:
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk")
        before = len(rows(engine))
        written = []

        def count_then_fail(uow: UnitOfWork, _: FireResult) -> None:
            written.append(len(uow.outbox.listing(STATUSES, limit=1000)))
            raise RuntimeError("the process dies before the commit")

        with pytest.raises(RuntimeError):
            engine.fire(instance.id, "submit", actor="a", role="clerk", also=count_then_fail)
        assert written[0] > before  # the messages were in the transaction...
        assert len(rows(engine)) == before  # ...and went with its rollback
        assert engine.get(instance.id).state == "open"


def test_personal_fields_are_withheld_from_recipients_without_consent(
    db_url: str, clock: FrozenClock
) -> None:
    with notice_engine(db_url, clock) as engine:
        engine.start("notice", actor="a", role="clerk", data={"place": "P", **PERSONAL})
        found = rows(engine)
    for message in found:
        context = message.payload["context"]
        assert context["data"]["person"] == WITHHELD
        assert context["data"]["story"] == WITHHELD
        assert context["data"]["relatives"] == [WITHHELD]
        assert sorted(context["withheld"]) == ["person", "relatives", "story"]
        assert "Ana" not in str(message.payload)
        assert "Beaten" not in str(message.payload)


def test_a_transition_notifies_the_role_the_assignees_and_an_address_held_in_the_data(
    db_url: str, clock: FrozenClock
) -> None:
    data = {"assigned": ["c.log", "a.file"], "focal_email": "focal@ministry.example"}
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk", data=data)
        engine.fire(instance.id, "submit", actor="a", role="clerk", reason="ready")
        found = [m for m in rows(engine) if m.event == "notice.transition.submit"]
    assert sorted((m.channel, m.recipient) for m in found) == [
        ("email", "address:focal@ministry.example"),
        ("email", "h.one"),
        ("email", "h.two"),
        ("file", "a.file"),
        ("log", "c.log"),
    ]
    focal = next(m for m in found if m.recipient.startswith("address:"))
    assert focal.payload["to"] == {"name": "Focal point", "address": "focal@ministry.example"}
    assert focal.payload["context"]["event"]["trigger"] == "submit"


def test_consent_for_a_use_covers_only_the_recipients_of_that_use(
    db_url: str, clock: FrozenClock
) -> None:
    person = {
        "ref": "P1",
        "uses": ["report_to_authority"],
        "consent_obtained_by": "a",
        "consent_obtained_on": "2026-03-01",
        "consent_how": "orally",
    }
    data = {"focal_email": "focal@ministry.example", "persons": [person], **PERSONAL}
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk", data=data)
        engine.fire(instance.id, "submit", actor="a", role="clerk", reason="Ana asked us")
        found = {m.recipient: m for m in rows(engine) if m.event == "notice.transition.submit"}
    focal = found["address:focal@ministry.example"].payload["context"]
    assert focal["data"]["person"] == "Ana Pereira"
    assert focal["withheld"] == []
    assert focal["reason"] == "Ana asked us"
    head = found["h.one"].payload["context"]
    assert head["data"]["person"] == WITHHELD
    assert head["reason"] == WITHHELD


def test_a_role_nobody_holds_is_written_as_a_message_to_route_later(
    db_url: str, clock: FrozenClock
) -> None:
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk")
        engine.fire(instance.id, "submit", actor="a", role="clerk")
        engine.fire(instance.id, "close", actor="h", role="head")
        route = [m for m in rows(engine) if m.channel == ROUTE and m.event == "notice.enter.done"]
    assert [(m.recipient, m.status) for m in route] == [("role:notice.authority", PENDING)]
    assert route[0].payload["route"] == {"workflow": "notice", "role": "authority"}
    assert "authority" in (route[0].last_error or "")


def test_unknown_assignees_are_routed_later_and_an_empty_address_is_dead_at_once(
    db_url: str, clock: FrozenClock
) -> None:
    data = {"assigned": ["h.one", "nobody"], "focal_email": "not an address"}
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk", data=data)
        engine.fire(instance.id, "submit", actor="a", role="clerk")
        route = {m.recipient: m for m in rows(engine) if m.channel == ROUTE}
    assert route["people:nobody"].status == PENDING
    assert route["people:nobody"].payload["route"] == {"people": ["nobody"]}
    assert route["field:focal_email"].status == DEAD
    assert "focal_email" in (route["field:focal_email"].last_error or "")


def test_webhooks_receive_a_cloudevent_without_personal_fields(
    db_url: str, clock: FrozenClock
) -> None:
    hooks = [
        {"id": "all", "url": "http://127.0.0.1:9/all", "secret": SECRET},
        {
            "id": "deadlines",
            "url": "http://127.0.0.1:9/d",
            "secret": SECRET,
            "events": ["deadline"],
        },
        {"id": "other", "url": "http://127.0.0.1:9/o", "secret": SECRET, "workflows": ["visit"]},
    ]
    directory = make_directory(webhooks=hooks)
    with notice_engine(db_url, clock, directory) as engine:
        instance = engine.start("notice", actor="a", role="clerk", data={"place": "P", **PERSONAL})
        engine.fire(instance.id, "note", actor="a", role="clerk", data={"count": 3}, reason="Ana")
        found = [m for m in rows(engine) if m.channel == WEBHOOK]
    assert [(m.recipient, m.event) for m in found] == [
        ("all", "notice.started.start"),
        ("all", "notice.transition.note"),
    ]
    event = found[1].payload["cloudevent"]
    assert event["specversion"] == "1.0"
    assert event["type"] == "org.opcatflow.transition.applied"
    assert event["id"] == found[1].idempotency_key
    assert event["subject"] == instance.id
    assert event["data"]["data"] == {"place": "P", "count": 3}
    assert event["data"]["trigger"] == "note"
    assert "Ana" not in str(event)


def test_a_deadline_reminder_notifies_through_the_hook(db_url: str, clock: FrozenClock) -> None:
    with notice_engine(db_url, clock) as engine:
        instance = engine.start("notice", actor="a", role="clerk", data={"owner": "h.one"})
        wf = engine.workflow("notice")
        due = clock.now() + timedelta(days=10)
        for at in (clock.now() + timedelta(days=7), clock.now() + timedelta(days=8)):
            event = DeadlineEvent(wf, engine.get(instance.id), "answer", "reminder", due, at)
            with engine.store.write() as uow:
                for hook in engine.hooks:
                    hook.on_deadline(uow, event)
        found = [m for m in rows(engine) if m.event == "notice.reminder.answer"]
    assert [m.recipient for m in found] == ["h.one", "h.one"]
    assert len({m.idempotency_key for m in found}) == 2
    context = found[0].payload["context"]["event"]
    assert (context["kind"], context["deadline"], context["deadline_label"]) == (
        "reminder",
        "answer",
        "Answer",
    )
    assert context["due_at"] == due.isoformat()
