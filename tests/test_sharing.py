"""Consent and do-no-harm: one rule (engine/sharing.py ``may_share``) for the transitions that
share and for the messages that carry personal data, on both backends."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from casework import ASSESS, CASEWORKER, HEAD, INTAKE, RECORD, Desk, catalog, seed_bodies
from hypothesis import given, settings
from hypothesis import strategies as st

from opcatflow.engine import Engine, FrozenClock, SQLAlchemyStore
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.firing import Applied, Refused, decide
from opcatflow.engine.loader import load_catalog
from opcatflow.engine.settings import Settings, SettingsError
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.dispatcher import Dispatcher
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.redaction import Audience, redact
from opcatflow.notifications.templates import TemplateSet
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.shipped import shipped_bodies

PERSON = {
    "ref": "P1",
    "name": "Tomás Varga",
    "uses": ["refer"],
    "consent_obtained_by": "l.ferreira",
    "consent_obtained_on": "2026-03-02",
    "consent_how": "in_writing",
}
COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-02",
    "summary": "Struck by two officers in cell 14 after asking to see a doctor.",
}
EVIDENCE = {"referral_body": "childrens_ombudsperson", "referral_shares": "evidence"}


def decision(**changes: Any) -> dict[str, Any]:
    entry = {
        "ground": "serious_violation_reprisal_risk",
        "recipient": "police_ombudsperson",
        "fields": ["summary", "persons"],
        "use": "refer",
        "decided_on": "2026-03-02",
        "expires_on": "2026-04-01",
        "why": "Transferred and unreachable; asking would expose him.",
    }
    return {"do_no_harm": {"append": [{**entry, **changes}]}}


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def assessed(desk: Desk, persons: list[dict[str, Any]] | None = None) -> str:
    data = {
        **COMPLAINT,
        "persons": [{"ref": "P1", "name": "Tomás Varga"}] if persons is None else persons,
    }
    complaint = desk.start("complaint", INTAKE, data)
    desk.fire(complaint, "record", INTAKE, RECORD)
    desk.fire(complaint, "assess", CASEWORKER, ASSESS)
    return complaint


def test_a_decision_naming_the_prison_director_unlocks_nothing(desk: Desk) -> None:
    complaint = assessed(desk)
    refused = desk.refused(
        complaint, "decide_do_no_harm", HEAD, decision(recipient="prison_director")
    )
    assert "do_no_harm[1].recipient: 'prison_director' is not a body that may receive" in (
        refused.reason
    )
    # a decision for one body does not unlock another
    desk.fire(complaint, "decide_do_no_harm", HEAD, decision())
    refused = desk.refused(complaint, "refer", HEAD, EVIDENCE)
    assert refused.kind == "guard"
    assert "no active do-no-harm decision covers these fields to 'childrens_ombudsperson'" in (
        refused.reason
    )
    police = {**EVIDENCE, "referral_body": "police_ombudsperson"}
    assert desk.fire(complaint, "refer", HEAD, police).state == "acting"


def test_a_decision_naming_the_management_of_the_place_is_refused(desk: Desk) -> None:
    complaint = assessed(desk)
    refused = desk.refused(
        complaint, "decide_do_no_harm", HEAD, decision(recipient="prison_management")
    )
    assert "not independent of the place" in refused.reason


def test_informing_the_management_never_rests_on_a_decision(desk: Desk) -> None:
    complaint = assessed(desk)
    refused = desk.refused(
        complaint, "decide_do_no_harm", HEAD, decision(use="share_with_management")
    )
    assert refused.kind == "data"
    refused = desk.refused(complaint, "inform_management", HEAD)
    assert "rests on consent only" in refused.reason


def test_a_decision_by_anyone_but_the_head_is_refused(desk: Desk) -> None:
    complaint = assessed(desk)
    refused = desk.refused(complaint, "decide_do_no_harm", CASEWORKER, decision())
    assert refused.kind == "role"
    refused = desk.refused(complaint, "record_consent", CASEWORKER, decision())
    assert refused.kind == "data"


def test_a_decision_past_its_expiry_no_longer_covers(desk: Desk) -> None:
    complaint = assessed(desk)
    desk.fire(complaint, "decide_do_no_harm", HEAD, decision(expires_on="2026-03-05"))
    desk.later(days=3)  # 5 March: the expiry day no longer counts
    police = {**EVIDENCE, "referral_body": "police_ombudsperson"}
    refused = desk.refused(complaint, "refer", HEAD, police)
    assert "no active do-no-harm decision" in refused.reason


def test_consent_of_every_person_covers_a_use_and_a_withdrawal_ends_it(desk: Desk) -> None:
    other = {"ref": "P2", "name": "Ivo Brandt"}
    complaint = assessed(desk, [PERSON, other])
    refused = desk.refused(complaint, "refer", HEAD, EVIDENCE)
    assert "1 of 2 person(s) have no active consent for it" in refused.reason
    consent = {k: v for k, v in PERSON.items() if k not in ("ref", "name")}
    desk.fire(
        complaint, "record_consent", CASEWORKER, {"persons": {"edit": [{"ref": "P2", **consent}]}}
    )
    withdrawn = {"persons": {"edit": [{"ref": "P2", "consent_withdrawn_on": "2026-03-02"}]}}
    desk.fire(complaint, "record_consent", CASEWORKER, withdrawn)
    assert "1 of 2" in desk.refused(complaint, "refer", HEAD, EVIDENCE).reason
    desk.fire(complaint, "record_consent", CASEWORKER, {"persons": {"remove": ["P2"]}})
    assert desk.fire(complaint, "refer", HEAD, EVIDENCE).state == "acting"


def test_a_mailed_complaint_is_not_acknowledged_on_receipt(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, {**COMPLAINT, "channel": "mail"})
    refused = desk.refused(complaint, "record", INTAKE, RECORD)
    assert "a complaint received by mail is not acknowledged by its receipt" in refused.reason
    early = desk.refused(complaint, "acknowledge", INTAKE, {"acknowledged_on": "2026-03-01"})
    assert "before it was received on 2026-03-02" in early.reason
    desk.fire(complaint, "acknowledge", INTAKE, {"acknowledged_on": "2026-03-03"})
    recorded = desk.fire(complaint, "record", INTAKE, RECORD)
    assert recorded.data["acknowledged_on"] == "2026-03-03"


def test_a_complaint_handed_over_in_person_is_acknowledged_the_day_received(desk: Desk) -> None:
    complaint = desk.start("complaint", INTAKE, {**COMPLAINT, "channel": "in_person"})
    recorded = desk.fire(complaint, "record", INTAKE, {**RECORD, "acknowledged_on": "2026-01-01"})
    assert recorded.data["acknowledged_on"] == "2026-03-02"


# -- messages ----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def close(self) -> None:
        return None


class Source:
    def __init__(self, directory: Any) -> None:
        self.directory = directory

    def current(self) -> Any:
        return self.directory


TIP = Path(__file__).parent / "definitions" / "sharing" / "tip.yaml"
TEMPLATES = Path(__file__).parent / "definitions" / "sharing" / "templates"
OMBUDS = {
    "id": "o.one",
    "name": "Ombuds Officer",
    "email": "officer@ombuds.example",
    "roles": ["complaint.caseworker"],
    "body": "police_ombudsperson",
    "consent_uses": ["refer"],
}


@contextmanager
def notifying(db_url: str, clock: FrozenClock) -> Iterator[tuple[Engine, Dispatcher, Recorder]]:
    directory = parse_directory(yaml.safe_dump({"people": [OMBUDS]}), "<directory>")
    policy = Settings.default().policy
    writer = OutboxWriter(directory, policy=policy)
    recorder = Recorder()
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    with Engine(store, catalog(), registry, clock=clock, hooks=[writer]) as engine:
        seed_bodies(engine)
        dispatcher = Dispatcher(
            engine.store,
            {"email": recorder},
            templates=TemplateSet([]),
            directory=Source(directory),
            clock=clock,
            rng=random.Random(1),
            sharing=policy,
        )
        yield engine, dispatcher, recorder


def test_a_consent_withdrawn_after_a_message_was_queued_withholds_it_at_dispatch(
    db_url: str, clock: FrozenClock
) -> None:
    with notifying(db_url, clock) as (engine, dispatcher, recorder):
        data = {**COMPLAINT, "persons": [PERSON]}
        complaint = engine.start("complaint", actor=INTAKE[0], role=INTAKE[1], data=data).id
        withdrawn = {"persons": {"edit": [{"ref": "P1", "consent_withdrawn_on": "2026-03-02"}]}}
        engine.fire(
            complaint, "record_consent", actor=CASEWORKER[0], role=CASEWORKER[1], data=withdrawn
        )
        dispatcher.drain()
    [message] = recorder.sent
    assert "Tomás" not in message.text
    assert "cell 14" not in message.text
    assert "withheld" in message.text


def test_a_consent_still_active_at_dispatch_shows_the_fields(
    db_url: str, clock: FrozenClock
) -> None:
    with notifying(db_url, clock) as (engine, dispatcher, recorder):
        data = {**COMPLAINT, "persons": [PERSON]}
        engine.start("complaint", actor=INTAKE[0], role=INTAKE[1], data=data)
        dispatcher.drain()
    [message] = recorder.sent
    assert "Tomás Varga" in message.text
    assert "cell 14" in message.text


@contextmanager
def tip_engine(db_url: str, clock: FrozenClock) -> Iterator[tuple[Engine, Dispatcher, Recorder]]:
    officer = {**OMBUDS, "roles": ["tip.officer"]}
    directory = parse_directory(yaml.safe_dump({"people": [officer]}), "<directory>")
    policy = Settings.default().policy
    recorder = Recorder()
    writer = OutboxWriter(directory, policy=policy)
    # the tip refers to bodies of the authority register: the register comes along
    sources = [TIP, BUNDLED / "authority.yaml"]
    with Engine.open(db_url, sources, registry, clock=clock, hooks=[writer]) as engine:
        seed_bodies(engine)
        dispatcher = Dispatcher(
            engine.store,
            {"email": recorder},
            templates=TemplateSet([TEMPLATES], include_bundled=False),
            directory=Source(directory),
            clock=clock,
            rng=random.Random(1),
            sharing=policy,
        )
        yield engine, dispatcher, recorder


def tip_decision(expires_on: str) -> dict[str, Any]:
    return decision(fields=["account", "reason"], expires_on=expires_on)


def test_a_decision_expired_before_dispatch_withholds_the_fields(
    db_url: str, clock: FrozenClock
) -> None:
    with tip_engine(db_url, clock) as (engine, dispatcher, recorder):
        tip = engine.start("tip", actor="o", role="officer", data={"account": "Beaten in cell 4"})
        engine.fire(
            tip.id, "decide_do_no_harm", actor="h", role="head", data=tip_decision("2026-03-03")
        )
        engine.fire(tip.id, "note", actor="o", role="officer", reason="Ana saw it")
        clock.advance(timedelta(days=1))  # 3 March: the decision's expiry day
        dispatcher.drain()
        queued_while_active = [m.text for m in recorder.sent]
        engine.fire(tip.id, "note", actor="o", role="officer", reason="Ana saw it")
        dispatcher.drain()
    assert queued_while_active == ["account=[withheld]\nreason=[withheld]\n"]
    assert recorder.sent[-1].text == queued_while_active[0]


def test_a_decision_still_active_at_dispatch_shows_what_it_names(
    db_url: str, clock: FrozenClock
) -> None:
    with tip_engine(db_url, clock) as (engine, dispatcher, recorder):
        tip = engine.start("tip", actor="o", role="officer", data={"account": "Beaten in cell 4"})
        engine.fire(
            tip.id, "decide_do_no_harm", actor="h", role="head", data=tip_decision("2026-03-03")
        )
        engine.fire(tip.id, "note", actor="o", role="officer", reason="Ana saw it")
        dispatcher.drain()
    assert [m.text for m in recorder.sent] == ["account=Beaten in cell 4\nreason=Ana saw it\n"]


# -- validate ------------------------------------------------------------------------------


def test_validate_refuses_a_share_of_an_unknown_use_and_a_decision_at_start(tmp_path: Any) -> None:
    source = (BUNDLED / "complaint.yaml").read_text(encoding="utf-8")
    bad = source.replace("shares: {use: refer,", "shares: {use: publish_online,").replace(
        "  writes: [persons, summary, institution]",
        "  writes: [persons, summary, institution, do_no_harm]",
    )
    path = tmp_path / "complaint.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_catalog([path], registry)
    found = "\n".join(str(p) for p in caught.value.problems)
    assert "use 'publish_online' is not among the uses of persons" in found
    assert "'do_no_harm' is recorded by a transition, where it is checked, never at start" in found
    assert str(path) in found


def test_settings_refuse_bodies_and_say_where_they_went() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_text(
            "calendar: {timezone: UTC}\nbodies:\n  x: {name: X, kind: ombudsperson}\n",
            "npm.yaml",
        )
    [problem] = caught.value.problems
    assert str(problem).startswith("npm.yaml:2:")
    assert "entries of the authority register now" in problem.message


def test_a_body_retired_in_the_register_can_no_longer_be_referred_to(desk: Desk) -> None:
    complaint = assessed(desk)
    with desk.engine() as eng:
        eng.fire(
            "police_ombudsperson", "retire", actor="r.haddad", role="head",
            data={"retired_on": "2026-03-02", "retired_reason": "merged into the ombudsperson"},
        )  # fmt: skip
    refused = desk.refused(complaint, "decide_do_no_harm", HEAD, decision())
    assert "'police_ombudsperson' is not a body that may receive data" in refused.reason


# -- one rule, two paths ---------------------------------------------------------------------

BODIES = ["police_ombudsperson", "childrens_ombudsperson", "prison_management", "unknown"]
DAYS = ["2026-02-20", "2026-03-01", "2026-03-02", "2026-03-03", "2026-04-01"]
maybe_day = st.none() | st.sampled_from(DAYS)
persons_st = st.lists(
    st.fixed_dictionaries(
        {
            "ref": st.sampled_from(["P1", "P2", "P3"]),
            "name": st.sampled_from(["Ana", "Ivo"]),
            "uses": st.sampled_from([[], ["refer"]]),
            "consent_obtained_by": st.sampled_from([None, "l.ferreira"]),
            "consent_obtained_on": maybe_day,
            "consent_how": st.sampled_from([None, "orally"]),
            "consent_withdrawn_on": maybe_day,
        }
    ),
    max_size=3,
    unique_by=lambda p: p["ref"],
)
decisions_st = st.lists(
    st.fixed_dictionaries(
        {
            "ground": st.sampled_from(["serious_violation_reprisal_risk", "unable_to_consent"]),
            "recipient": st.sampled_from(BODIES),
            "fields": st.lists(st.sampled_from(["account", "persons", "place"]), unique=True),
            "use": st.just("refer"),
            "decided_on": st.sampled_from(DAYS),
            "expires_on": st.sampled_from(DAYS),
        }
    ),
    max_size=3,
)


@settings(max_examples=60, deadline=None, database=None)
@given(
    persons=persons_st,
    decisions=decisions_st,
    recipient=st.sampled_from(BODIES),
    account=st.sampled_from([None, "Beaten in cell 4"]),
)
def test_the_guard_and_the_redaction_give_the_same_answer(
    persons: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    recipient: str,
    account: str | None,
) -> None:
    """For any consents, decisions, recipient and filled fields: the transition that shares
    is allowed exactly when a message to that body for that use withholds none of the
    fields it shares."""
    wf = tip_workflow()
    people = [{k: v for k, v in p.items() if v is not None} for p in persons]
    data: dict[str, Any] = {"persons": people} if people else {}
    if decisions:
        data["do_no_harm"] = [{"n": i + 1, **d} for i, d in enumerate(decisions)]
    if account is not None:
        data["account"] = account
    policy = dataclasses.replace(Settings.default().policy, bodies=shipped_bodies())
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    outcome = decide(
        wf,
        instance_id="i",
        state="open",
        data=data,
        trigger="refer",
        actor="h",
        role="head",
        supplied={"body": recipient},
        now=now,
        policy=policy,
    )
    if isinstance(outcome, Refused):
        assert outcome.kind in ("guard", "data"), outcome.reason
    shown = redact(
        {**data, "body": recipient},
        wf.schema.fields,
        wf.schema.personal,
        Audience(recipient, frozenset({"refer"})),
        policy=policy,
        today=now.date(),
        parts=wf.schema.personal_parts,
    )
    shares = {"account", "persons"}
    guard_allows = isinstance(outcome, Applied)
    redaction_allows = not (shares & set(shown.withheld)) and recipient in policy.bodies
    assert guard_allows == redaction_allows


@cache
def tip_workflow() -> CompiledWorkflow:
    return load_catalog([TIP], registry).get("tip")


def test_a_policy_with_other_bodies_keeps_every_other_setting() -> None:
    # with_bodies builds the policy positionally (it runs on every fire): a field added to
    # Policy must be passed on there too.
    from opcatflow.engine.sharing import Body, Policy

    settings = {
        "acknowledge_on_receipt": frozenset({"post"}),
        "factual_check_by_kind": {"follow_up": False},
        "required_expertise": {"psychiatric_hospital": ("medical",)},
    }
    from opcatflow.engine.calendar import WorkingCalendar

    settings["calendar"] = WorkingCalendar("Europe/Paris")
    assert {f.name for f in dataclasses.fields(Policy)} == {"bodies", *settings}
    bodies = {"ombuds": Body("ombuds", "Ombuds", "ombudsperson", True)}
    moved = Policy(**settings).with_bodies(bodies)  # type: ignore[arg-type]
    assert moved == Policy(bodies, **settings)  # type: ignore[arg-type]
    assert moved.calendar is settings["calendar"]
