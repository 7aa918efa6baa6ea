"""References to register entries (``type: ref``): where a definition declares them, which
ids a write adds, and whether each names an entry that may be referred to now.

A register is a workflow declaring ``register:`` (docs/registers.md); its entries are its
instances, so an entry is read with the same lookup rules use to read other instances. The
check is a refusal on every write (start, fire, opens, import): a value the write adds must
name an ``active`` entry of the right register. Values already stored are never rewritten:
a place closed after a visit was recorded leaves the visit as it is, and readers follow a
merge to the surviving entry (:mod:`opcatflow.engine.registers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opcatflow.engine.definition import FieldSpec, FieldType, SubFieldSpec, WorkflowDefinition
from opcatflow.engine.instance import Instance
from opcatflow.engine.registry import Lookup

# The states and fields every register declares (checked by validate, register_checks).
ACTIVE = "active"
RETIRED = "retired"
MERGED = "merged"
MERGED_INTO = "merged_into"
RETIRED_ON = "retired_on"

ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
"""A register entry's id: a chosen one (``ombudsperson``) or a uuid, as instance ids are."""


@dataclass(frozen=True, slots=True)
class RefField:
    """One place in a definition's data that holds entry ids of ``register``: a field (one
    id, or a list of ids) or a sub-field of a records field's entries."""

    field: str
    register: str
    sub: str | None = None
    many: bool = False

    @property
    def loc(self) -> tuple[str, ...]:
        """Where it is declared, for a located problem."""
        if self.sub is None:
            return ("fields", self.field, "register")
        return ("fields", self.field, "item", self.sub, "register")

    @property
    def label(self) -> str:
        return self.field if self.sub is None else f"{self.field}.{self.sub}"

    def ids(self, data: Mapping[str, Any]) -> list[str]:
        """The entry ids this field holds in ``data`` (in order, each once)."""
        value = data.get(self.field)
        if value is None:
            return []
        if self.sub is not None:
            found = [e.get(self.sub) for e in value if isinstance(e, dict)]
        elif self.many:
            found = list(value)
        else:
            found = [value]
        return list(dict.fromkeys(v for v in found if isinstance(v, str)))


def _is_ref(spec: FieldSpec | SubFieldSpec) -> tuple[bool, bool]:
    """(holds refs, holds a list of them)."""
    if spec.type is FieldType.REF:
        return True, False
    return spec.type is FieldType.LIST and spec.items is FieldType.REF, True


def ref_fields(definition: WorkflowDefinition) -> tuple[RefField, ...]:
    """Every ref a definition declares, in field order."""
    return tuple(_ref_fields(definition))


def _ref_fields(definition: WorkflowDefinition) -> Iterator[RefField]:
    for name, spec in definition.fields.items():
        if spec.type is FieldType.RECORDS:
            for sub, sub_spec in (spec.item or {}).items():
                is_ref, many = _is_ref(sub_spec)
                if is_ref and sub_spec.register_id is not None:
                    yield RefField(name, sub_spec.register_id, sub, many)
            continue
        is_ref, many = _is_ref(spec)
        if is_ref and spec.register_id is not None:
            yield RefField(name, spec.register_id, None, many)


def added_refs(
    refs: tuple[RefField, ...], before: Mapping[str, Any], after: Mapping[str, Any]
) -> Iterator[tuple[RefField, str]]:
    """The ids ``after`` holds that ``before`` did not, per ref field: what a write adds.
    An id kept from before is not checked again (stored values are never rewritten)."""
    for ref in refs:
        if before.get(ref.field) == after.get(ref.field):
            continue
        kept = set(ref.ids(before))
        for entry_id in ref.ids(after):
            if entry_id not in kept:
                yield ref, entry_id


def entry_problem(
    register: str, entry_id: str, entry: Instance | None, retired_word: str = RETIRED
) -> str | None:
    """Why ``entry`` (read by ``entry_id``) may not be referred to now, or ``None``.
    ``retired_word``: what the register calls retiring (the label of its retired state: a
    place is "closed")."""
    if entry is None or entry.workflow_id != register:
        return f"{register} {entry_id!r} is not in the {register} register"
    if entry.state == ACTIVE:
        return None
    if entry.state == MERGED:
        return f"{register} {entry_id!r} was merged into {entry.data.get(MERGED_INTO)!r}"
    if entry.state == RETIRED:
        day = entry.data.get(RETIRED_ON)
        return f"{register} {entry_id!r} is retired ({retired_word} on {day})"
    return f"{register} {entry_id!r} is {entry.state}, not active"


def ref_refusal(
    refs: tuple[RefField, ...],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    lookup: Lookup,
    retired_words: Mapping[str, str],
) -> str | None:
    """Every problem with the ids a write adds (``before`` -> ``after``), as one reason for
    a refusal of kind ``data``; ``None`` when each names an active entry of its register.
    ``retired_words``: register -> what it calls retiring (default "retired")."""
    problems = []
    for ref, entry_id in added_refs(refs, before, after):
        word = retired_words.get(ref.register, RETIRED)
        problem = entry_problem(ref.register, entry_id, lookup(entry_id), word)
        if problem is not None:
            problems.append(f"{ref.label}: {problem}")
    return "; ".join(problems) if problems else None


def check_entry_id(value: Any) -> Any:
    """The check of one ref value: an entry id (its entry is checked on write)."""
    if not isinstance(value, str) or ENTRY_ID.fullmatch(value) is None:
        raise ValueError(
            f"expected an entry id (lowercase letters, digits, '_', '.', '-'), got {value!r}"
        )
    return value
