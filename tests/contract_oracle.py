"""An oracle for the data contract of the bundled workflows, written here from the definitions
(not from the engine's contract module), and the random steps the property tests feed it.

What it holds a step to: a caller's data lands only in fields the fired transition (or the
start) writes, that the caller's role may write and read; any other change is one of the
transition's actions (or the actions of the state it enters) declared in the registry; a
refusal quotes no personal value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st
from registerkit import AUTHORITIES, PEOPLE, PLACES, THEMES

from opcatflow.engine import CompiledWorkflow
from opcatflow.engine.definition import FieldSpec, FieldType, TransitionSpec
from opcatflow.workflows import registry

SECRET = "secret"  # every personal value the strategies make contains it, and nothing else does
ACTORS = ["dr.osei", "z.haq", "l.ferreira"]  # experts' accounts among them: own and others'
OTHER_ROLES = ["scheduler", "visitor"]

_SCALARS: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.STRING: st.sampled_from(["Ministry", "Central Remand Prison", "x"]),
    FieldType.TEXT: st.sampled_from(["-", "A note."]),
    FieldType.INTEGER: st.integers(0, 4),
    FieldType.BOOLEAN: st.booleans(),
    FieldType.DATE: st.sampled_from(["2026-01-05", "2026-03-02", "2027-06-30"]),
    FieldType.DATETIME: st.just("2026-03-02T09:00:00+00:00"),
}


# A reference names an entry the test database holds (registerkit.seed)
_ENTRIES = {"authority": AUTHORITIES, "place": PLACES, "theme": THEMES, "person": PEOPLE}


def _item(kind: FieldType, spec: FieldSpec, name: str) -> st.SearchStrategy[Any]:
    if kind is FieldType.REF:
        return st.sampled_from(sorted(_ENTRIES[spec.register_id or ""]))
    if kind is FieldType.ENUM:
        return st.sampled_from(spec.values or [])
    if spec.personal and kind in (FieldType.STRING, FieldType.TEXT):
        return st.integers(1, 3).map(lambda n: f"{SECRET}-{name}-{n}")
    return _SCALARS[kind]


def value_of(name: str, spec: FieldSpec) -> st.SearchStrategy[Any]:
    """A valid value for the field (personal text carries the SECRET marker)."""
    if spec.type is FieldType.LIST:
        assert spec.items is not None
        return st.lists(_item(spec.items, spec, name), max_size=3)
    return _item(spec.type, spec, name)


def known(wf: CompiledWorkflow) -> dict[str, FieldSpec]:
    """The fields this oracle can make values for (types it knows)."""
    kinds = {*_SCALARS, FieldType.ENUM, FieldType.LIST, FieldType.REF}
    return {n: f for n, f in wf.definition.fields.items() if f.type in kinds}


def data_for(wf: CompiledWorkflow, names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    fields = known(wf)
    return st.fixed_dictionaries(
        {}, optional={n: value_of(n, fields[n]) for n in names if n in fields}
    )


# -- what the definitions say --------------------------------------------------------------


def caller_writes(spec: TransitionSpec) -> set[str]:
    return set(spec.writes or ()) | set(spec.requires)


def start_caller_writes(wf: CompiledWorkflow) -> set[str]:
    d = wf.definition
    return (
        set(d.start.writes or ())
        | set(d.start.requires)
        | {n for n, f in d.fields.items() if f.required}
    )


def system_writes(wf: CompiledWorkflow, spec: TransitionSpec | None) -> set[str]:
    """What the actions a step runs declare: the transition's, and the entered state's."""
    states = wf.definition.states
    if spec is None:  # a start enters the initial state
        names = list(states[wf.initial].on_enter)
    else:
        names = [*spec.actions, *(states[spec.dest].on_enter if spec.dest else [])]
    return {f for a in names for f in registry.action_writes[a]}


def may_not_read(wf: CompiledWorkflow, role: str) -> set[str]:
    d = wf.definition
    return {
        n
        for n, f in d.fields.items()
        if f.personal and role not in (f.visible_to or d.personal_visible_to)
    }


def may_not_write(wf: CompiledWorkflow, role: str) -> set[str]:
    """Fields the role may never supply: write_roles leaving it out, the owner field for an
    owner role, and what it may not read."""
    d = wf.definition
    barred = {
        n for n, f in d.fields.items() if f.write_roles is not None and role not in f.write_roles
    }
    if d.owner is not None and role in d.owner.roles:
        barred.add(d.owner.field)
    return barred | may_not_read(wf, role)


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    return {k for k in {*before, *after} if before.get(k) != after.get(k)}


def check_applied(
    wf: CompiledWorkflow,
    spec: TransitionSpec | None,
    role: str,
    before: Mapping[str, Any],
    supplied: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    """An applied start (``spec`` None) or transition kept to the contract."""
    writes = start_caller_writes(wf) if spec is None else caller_writes(spec)
    given = set(supplied)
    assert given <= writes - may_not_write(wf, role), (role, given)
    outside = changed(before, after) - writes - system_writes(wf, spec)
    assert not outside, (spec.trigger if spec else "start", role, outside)


def check_refusal_reason(reason: str) -> None:
    """A refusal is audited and shown to the caller: it never quotes a personal value."""
    assert SECRET not in reason, reason


def owner_allows(wf: CompiledWorkflow, role: str, actor: str, data: Mapping[str, Any]) -> bool:
    owner = wf.definition.owner
    return owner is None or role not in owner.roles or data.get(owner.field) == actor
