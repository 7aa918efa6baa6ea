"""No personal value reaches a recipient who may not see it: every bundled template, in every
locale, rendered for every bundled workflow with random personal data, for recipients that no
consent or do-no-harm decision covers; and every webhook payload.

Personal values are drawn from letters that appear in no template and in no generated
non-personal value, so finding any one of those letters in a message is a leak, however the
template slices, transforms or escapes the value."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opcatflow.engine import CompiledWorkflow, Instance, load_catalog
from opcatflow.engine.definition import FieldSpec, FieldType
from opcatflow.engine.settings import Settings
from opcatflow.engine.sharing import DECISIONS, PERSONS
from opcatflow.notifications.compose import Occurrence, base_context, cloudevent, context_for
from opcatflow.notifications.redaction import Audience
from opcatflow.notifications.templates import BUNDLED_TEMPLATES, TemplateSet
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.shipped import shipped_bodies

SECRET_LETTERS = "ǅǈǋǲȸȹɃɄʭʮϏϗꙀꙁꙂꙃ"
LOCALES = ("en", "fr", "es")
CATALOG = list(load_catalog([BUNDLED], registry).latest())
# The clock stands still: this test is about what a message shows, and a busy CI machine must
# not trip the render's time budget (tested on its own in the template tests)
TEMPLATES = TemplateSet(timer=lambda: 0.0)
NAMES = sorted(TEMPLATES.names())
# the shipped bodies, as the authority register holds them once seeded
POLICY = dataclasses.replace(Settings.default().policy, bodies=shipped_bodies())
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def usable(wf: CompiledWorkflow, name: str) -> bool:
    return not TEMPLATES.check(name, wf.definition.fields)


PAIRS = [(wf, name) for wf in CATALOG for name in NAMES if usable(wf, name)]
# templates about a deadline read event.due_on: render them for deadline events only
DEADLINE_TEMPLATES = {
    name for name in NAMES if "due_on" in (BUNDLED_TEMPLATES / f"{name}.en.jinja").read_text()
}

secret = st.text(alphabet=SECRET_LETTERS, min_size=3, max_size=40)
plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz -.,0123456789", min_size=1, max_size=30)


def scalar(kind: FieldType, values: list[str] | None) -> st.SearchStrategy[Any]:
    if kind is FieldType.ENUM:
        return st.sampled_from(values or ["x"])
    if kind is FieldType.INTEGER:
        return st.integers(-1000, 100_000)
    if kind is FieldType.BOOLEAN:
        return st.booleans()
    if kind is FieldType.DATE:
        return st.dates().map(lambda d: d.isoformat())
    if kind is FieldType.DATETIME:
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    return plain


def value(spec: FieldSpec, personal: bool) -> st.SearchStrategy[Any]:
    if spec.type is FieldType.LIST:
        assert spec.items is not None
        item = secret if personal else scalar(spec.items, spec.values)
        return st.lists(item, min_size=1, max_size=4)
    return secret if personal else scalar(spec.type, spec.values)


@st.composite
def scenario(
    draw: st.DrawFn,
) -> tuple[CompiledWorkflow, str, str, dict[str, Any], Audience, Occurrence]:
    wf, name = draw(st.sampled_from(PAIRS))
    fields = wf.definition.fields
    data: dict[str, Any] = {}
    for field, spec in fields.items():
        if field in (PERSONS, DECISIONS):
            continue
        if draw(st.booleans()) or spec.personal:
            data[field] = draw(value(spec, spec.personal))
    # consent to other uses (or withdrawn), and do-no-harm decisions that name another body
    # or have expired: none of them covers the recipient
    uses_spec = (fields[PERSONS].item or {}).get("uses") if PERSONS in fields else None
    known = list(uses_spec.values or []) if uses_spec is not None else []
    consented = draw(st.lists(st.sampled_from(known), unique=True)) if known else []
    uses = [u for u in known if u not in consented]
    if PERSONS in fields:
        consent = {
            "uses": consented,
            "consent_obtained_by": "x",
            "consent_obtained_on": "2026-03-01",
            "consent_how": "orally",
        }
        withdrawn = draw(st.sampled_from([{}, {"consent_withdrawn_on": "2026-03-02"}]))
        named = {"name": draw(secret)} if "name" in (fields[PERSONS].item or {}) else {}
        data[PERSONS] = [{"ref": "P1", **named, **consent, **withdrawn}]
        uses += list(consented) if withdrawn else []
    if DECISIONS in fields:
        decision = {
            "n": 1,
            "ground": "unable_to_consent",
            "recipient": draw(st.sampled_from(["police_ombudsperson", "ombudsperson"])),
            "fields": [f for f in fields if f != DECISIONS] + ["reason"],
            "use": "refer",
            "decided_on": "2026-02-01",
            "expires_on": draw(st.sampled_from(["2026-03-02", "2026-04-01"])),
        }
        data[DECISIONS] = [decision]
        covered = decision["expires_on"] > "2026-03-02"
        body = "childrens_ombudsperson" if covered else decision["recipient"]
    else:
        body = "NPM"
    audience = draw(
        st.sampled_from(
            [
                Audience(),
                Audience(body=body, consent_uses=frozenset(uses)),
                Audience(body=body, consent_uses=frozenset(uses[:1])),
                Audience(machine=True, body="Another body"),
            ]
        )
    )
    states = list(wf.definition.states)
    state = draw(st.sampled_from(states))
    instance = Instance(
        id=str(uuid.uuid4()),
        workflow_id=wf.id,
        workflow_version=wf.version,
        state=state,
        data=data,
        version=draw(st.integers(1, 50)),
        parent_id=None,
        created_at=NOW,
        updated_at=NOW,
        state_entered_at=NOW,
        audit_seq=3,
        audit_head="0" * 64,
    )
    kinds = ["reminder", "due"] if name in DEADLINE_TEMPLATES else ["started", "transition"]
    kind = draw(st.sampled_from(kinds))
    deadlines = [d.id for s in wf.definition.states.values() for d in s.deadlines] or ["none"]
    occurrence = Occurrence(
        workflow=wf,
        instance=instance,
        kind=kind,
        at=NOW,
        trigger=draw(st.sampled_from(sorted(wf.triggers))),
        left=draw(st.sampled_from(states)),
        entered=state,
        actor="m.okafor",
        role=draw(st.sampled_from(sorted(wf.definition.roles))),
        reason=draw(st.none() | secret),
        deadline=draw(st.sampled_from(deadlines)) if kind in ("reminder", "due") else None,
        due_at=NOW + timedelta(days=3) if kind in ("reminder", "due") else None,
        due_on=(NOW + timedelta(days=2)).date() if kind in ("reminder", "due") else None,
    )
    return wf, name, draw(st.sampled_from(LOCALES)), data, audience, occurrence


def leaked(text: str | None) -> set[str]:
    return {c for c in text or "" if c in SECRET_LETTERS}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_no_personal_value_reaches_a_recipient_no_consent_or_decision_covers(
    case: tuple[CompiledWorkflow, str, str, dict[str, Any], Audience, Occurrence],
) -> None:
    _, name, locale, _, audience, occ = case
    context, _ = context_for(
        occ, base_context(occ), audience, {"name": "R", "locale": locale}, POLICY
    )
    message = TEMPLATES.render(name, locale, json.loads(json.dumps(context)))  # as stored
    assert not leaked(message.subject)
    assert not leaked(message.text)
    assert not leaked(message.html)
    assert not leaked(json.dumps(cloudevent(occ, "k"), ensure_ascii=False))


def test_every_bundled_template_is_rendered_by_the_leak_test() -> None:
    files = {p.name.split(".")[0] for p in BUNDLED_TEMPLATES.glob("*.jinja")}
    assert {name for _, name in PAIRS} == files
    for name in files:
        assert {p.name.split(".")[1] for p in BUNDLED_TEMPLATES.glob(f"{name}.*.jinja")} == set(
            LOCALES
        )


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    ("workflow", "template", "field"),
    [("complaint", "complaint_received", "summary")],  # the workflows that record consent
)
def test_the_same_values_do_reach_a_recipient_whose_consent_is_recorded(
    workflow: str, template: str, field: str, locale: str
) -> None:
    # the control: without it, a template that never shows personal data would pass the above
    wf = next(w for w in CATALOG if w.id == workflow)
    use = "refer"
    person = {
        "ref": "P1",
        "uses": [use],
        "consent_obtained_by": "x",
        "consent_obtained_on": "2026-03-01",
        "consent_how": "orally",
    }
    data = {field: "ǅǈǋ Ꙁ", PERSONS: [person]}
    instance = Instance(
        str(uuid.uuid4()), wf.id, wf.version, wf.initial, data, 1, None, NOW, NOW, NOW, 1, "0" * 64
    )
    occ = Occurrence(wf, instance, "started", NOW, trigger="start", entered=wf.initial)
    audience = Audience(consent_uses=frozenset({use}))
    context, _ = context_for(
        occ, base_context(occ), audience, {"name": "R", "locale": locale}, POLICY
    )
    message = TEMPLATES.render(template, locale, context)
    assert "ǅǈǋ Ꙁ" in message.text
    assert message.html is not None
    assert "ǅǈǋ Ꙁ" in message.html
