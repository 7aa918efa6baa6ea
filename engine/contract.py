"""The data contract of one definition: what a start or a transition may write, which role
may write or read each field, and whose an instance is.

Compiled once per definition into sets the decision step checks in a few set operations
(:mod:`opcatflow.engine.firing`, :mod:`opcatflow.engine.writes`). ``docs/data-contract.md``
is the author's side of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opcatflow.engine.definition import TransitionSpec, WorkflowDefinition
from opcatflow.engine.records import Records

SYSTEM_ROLES = frozenset({"scheduler"})  # the deadline scheduler acts under this role
_NONE: frozenset[str] = frozenset()


def writes_declared(definition: WorkflowDefinition) -> bool:
    """Whether the definition says ``writes`` anywhere (a transition or ``start``)."""
    return definition.start.writes is not None or any(
        t.writes is not None for t in definition.transitions
    )


def checks_write_sets(definition: WorkflowDefinition, *, compat: bool) -> bool:
    """Whether write sets are enforced: always for a definition loaded from a file (one that
    declares ``writes`` nowhere writes only its ``requires``); a stored copy (``compat``)
    only when it declares ``writes`` somewhere, else it keeps the rule it was written under
    (any transition may write any field)."""
    return not compat or writes_declared(definition)


def transition_writes(spec: TransitionSpec) -> frozenset[str]:
    """What a caller firing ``spec`` may supply: its ``writes`` and its ``requires``."""
    return frozenset(spec.writes or ()) | frozenset(spec.requires)


def start_writes(definition: WorkflowDefinition) -> frozenset[str]:
    """What a caller starting an instance may supply: ``start.writes``, ``start.requires``
    and the fields with ``required: true``."""
    start = definition.start
    required = (n for n, f in definition.fields.items() if f.required)
    return frozenset(start.writes or ()) | frozenset(start.requires) | frozenset(required)


def withheld_fields(definition: WorkflowDefinition, roles: Iterable[str]) -> frozenset[str]:
    """The personal fields none of ``roles`` may read: a field's ``visible_to``, else the
    workflow's ``personal_visible_to``, names who may. A records field with personal
    sub-fields counts (views withhold only those sub-fields' values)."""
    held = frozenset(roles)
    default = definition.personal_visible_to
    return frozenset(
        name
        for name, spec in definition.fields.items()
        if (spec.personal or spec.personal_parts) and held.isdisjoint(spec.visible_to or default)
    )


@dataclass(frozen=True, slots=True)
class FieldRules:
    """Per role, the fields it may not write whatever it fires, and why."""

    barred: Mapping[str, frozenset[str]]  # role -> every field it may not write
    unreadable: Mapping[str, frozenset[str]]  # role -> fields it may not read
    owner_field: str | None
    owner_roles: frozenset[str]
    # role -> records field -> its personal sub-fields the role may not read (nor write)
    hidden_parts: Mapping[str, Mapping[str, frozenset[str]]]
    part_writers: Mapping[str, tuple[str, ...]]  # records field -> who may write those

    def parts_refusal(
        self,
        role: str,
        records: Mapping[str, Records],
        stored: Mapping[str, Any],
        supplied: Mapping[str, Any],
    ) -> str | None:
        """Why ``role`` may not write ``supplied`` (records values as checked, before they are
        applied to ``stored``): it sets, clears, changes or removes a personal sub-field value
        of a records field whose personal sub-fields it may not read. ``None`` when it may."""
        hidden = self.hidden_parts.get(role)
        if not hidden:
            return None
        parts = []
        for name in sorted(hidden.keys() & supplied.keys()):
            value = supplied[name]
            # null clears the field: an empty full list, dropping every stored entry
            written = [] if value is None else value
            if records[name].writes_personal(stored.get(name), written):
                who = ", ".join(self.part_writers.get(name, ())) or "no role"
                subs = ", ".join(sorted(hidden[name]))
                parts.append(
                    f"the personal sub-fields of {name} ({subs}; it may not read them:"
                    f" only {who} may write them)"
                )
        if not parts:
            return None
        return f"role {role!r} may not write " + "; ".join(parts)

    def unwritable(self, role: str) -> frozenset[str]:
        """Every field ``role`` may not write (``write_roles``, the read rule, the owner)."""
        return self.barred.get(role, _NONE)

    def why(self, role: str, names: Iterable[str], definition: WorkflowDefinition) -> str:
        """A refusal naming each field ``role`` may not write and the rule (never a value)."""
        parts = []
        for name in sorted(names):
            if name in self.unreadable.get(role, frozenset()):
                parts.append(f"{name} (it may not read it)")
            elif name == self.owner_field and role in self.owner_roles:
                others = sorted(set(definition.roles) - self.owner_roles)
                parts.append(
                    f"{name} (it names the instance's owner: only {', '.join(others) or 'no role'}"
                    " may write it)"
                )
            else:
                allowed = definition.fields[name].write_roles or []
                if allowed:
                    parts.append(f"{name} (only {', '.join(allowed)} may write it)")
                else:  # write_roles: [] - a log or a derived value the actions keep
                    parts.append(f"{name} (no caller writes it: the workflow's actions keep it)")
        return f"role {role!r} may not write " + "; ".join(parts)


def field_rules(definition: WorkflowDefinition) -> FieldRules:
    roles = set(definition.roles) | SYSTEM_ROLES
    write_roles = {
        role: frozenset(
            name
            for name, spec in definition.fields.items()
            if spec.write_roles is not None and role not in spec.write_roles
        )
        for role in roles
    }
    # Writing is barred for the fields withheld whole (a records field with personal
    # sub-fields is withheld in views only in those sub-fields: see hidden_parts below).
    unreadable = {
        role: frozenset(
            n for n in withheld_fields(definition, [role]) if definition.fields[n].personal
        )
        for role in roles
    }
    owner = definition.owner
    barred = {role: write_roles[role] | unreadable[role] for role in roles}
    if owner is not None:
        for role in owner.roles:
            barred[role] = barred.get(role, _NONE) | {owner.field}
    # A records field with personal sub-fields stays writable by a role that may not read
    # them (its other sub-fields), but not in those sub-fields: checked per write, by entry.
    with_parts = {n: s.personal_parts for n, s in definition.fields.items() if s.personal_parts}
    hidden_parts = {
        role: {n: with_parts[n] for n in withheld_fields(definition, [role]) if n in with_parts}
        for role in roles
    }
    firing: dict[str, set[str]] = {}  # field -> roles firing something that writes it
    for t in definition.transitions:
        for name in transition_writes(t):
            firing.setdefault(name, set()).update(t.roles)
    for name in start_writes(definition):
        firing.setdefault(name, set()).update(definition.start.roles or definition.roles)
    part_writers = {
        name: tuple(
            r
            for r in definition.roles
            if r in firing.get(name, ())
            and name not in barred.get(r, _NONE)
            and name not in hidden_parts[r]
        )
        for name in with_parts
    }
    return FieldRules(
        barred={r: f for r, f in barred.items() if f},
        unreadable={r: f for r, f in unreadable.items() if f},
        owner_field=owner.field if owner else None,
        owner_roles=frozenset(owner.roles) if owner else frozenset(),
        hidden_parts={r: p for r, p in hidden_parts.items() if p},
        part_writers=part_writers,
    )


NO_WRITES_HINT = (
    "this definition declares 'writes' nowhere, so a transition writes only its 'requires' "
    "(a start: its 'requires' and required fields); declare what each may write, see "
    "docs/data-contract.md"
)  # the refusal of data outside a write set and ``validate`` say it to migrating authors


@dataclass(frozen=True, slots=True)
class Writers:
    """Who may write each field, for the refusal of data outside a write set."""

    by_field: Mapping[str, list[str]]  # field -> "trigger (roles)" entries
    declared: bool  # whether the definition declares ``writes`` anywhere


def writers(definition: WorkflowDefinition, rules: FieldRules) -> Writers:
    """Field -> the triggers, each with the roles that may write the field through it, for
    the hint of a refusal."""
    found: dict[str, list[str]] = {}
    for t in definition.transitions:
        for name in sorted(transition_writes(t)):
            roles = [
                r for r in t.roles if r not in SYSTEM_ROLES and name not in rules.unwritable(r)
            ]
            label = f"{t.trigger} ({', '.join(roles)})"
            entries = found.setdefault(name, [])
            if roles and label not in entries:
                entries.append(label)
    return Writers(found, writes_declared(definition))


def outside_write_set(trigger: str, names: Iterable[str], known_writers: Writers) -> str:
    """The refusal for fields a transition does not write, each with who may write it; for a
    definition written before write sets existed, why (an operator migrating it reads this)."""
    parts = []
    for name in sorted(names):
        who = known_writers.by_field.get(name)
        hint = f"may be written by: {', '.join(who)}" if who else "no transition writes it"
        parts.append(f"{name} ({hint})")
    refusal = f"{trigger!r} does not write " + "; ".join(parts)
    return refusal if known_writers.declared else f"{refusal}: {NO_WRITES_HINT}"
