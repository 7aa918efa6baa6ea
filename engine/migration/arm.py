"""Deadlines only the target version declares: armed by the migration when the facts they
count from are on the instance.

A deadline new in the target state (one no source deadline is carried into) is counted as
its definition says, from facts the instance already holds, never from the migration:

- counted from a date field (``due: 14 days after received_on``) or a published date: that
  field's value;
- counted from entering its scope (``due: 10 days after entered``): when the instance
  entered the scope. For a deadline on one state, its state's entry time (which a migration
  keeps); for one over the whole instance, its start; for one over a group of states, the
  first record of the unbroken run of states inside the group that ends in its current
  state, read from its audit trail (each state of the source version through the plan).

When that fact is absent (the field is empty, the run starts on a version the plan does not
map), the deadline is ``not armed`` and the dry run says why; it arms on the next entry into
its scope. So does one whose ``when`` condition does not hold, one a ``met_by`` field already
meets, and one that still has an open occurrence. An armed deadline is created as entering
its scope would create it (overdue at once when its last day has passed), audited by its own
obligation record after the ``migrated`` record, which lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from opcatflow.engine.deadlines import DeadlinePlanner, applies
from opcatflow.engine.durations import ENTERED, parse_due
from opcatflow.engine.instance import Instance
from opcatflow.engine.migration.plan import Plan, spanning
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import OPEN_OBLIGATION, Obligation
from opcatflow.engine.scopes import Declared


@dataclass(frozen=True, slots=True)
class Arming:
    """What the migration does about one deadline new in the target state.

    Attributes:
        due_at: when it falls due (``None``: not armed, ``reason`` says why).
        anchor: the value it counts from (ISO 8601), as an obligation stores it.
    """

    declared: Declared
    due_at: datetime | None
    anchor: str | None
    last_day: date | None
    reason: str | None

    @property
    def name(self) -> str:
        return self.declared.spec.id

    def as_json(self) -> dict[str, Any]:
        return {
            "deadline": self.name,
            "last_day": None if self.last_day is None else self.last_day.isoformat(),
            "anchor": self.anchor,
        }


def new_deadlines(plan: Plan, state: str) -> list[Declared]:
    """The deadlines of the target state that no deadline of ``state`` is carried into."""
    move = plan.moves[state]
    carried = {new for new in move.deadlines.values() if new is not None}
    found = []
    for name in sorted(spanning(plan.target, move.to) - carried):
        declared = plan.target.deadlines.get(name)
        assert declared is not None
        found.append(declared)
    return found


def plan_arming(
    uow: UnitOfWork,
    plan: Plan,
    before: Instance,
    data: Mapping[str, Any],
    rows: list[Obligation],
    *,
    planner: DeadlinePlanner,
) -> list[Arming]:
    """For each deadline new in ``before``'s target state: when it falls due, or why it is
    not armed. ``data``: the instance's data as migrated; ``rows``: its obligations."""
    found = []
    for declared in new_deadlines(plan, before.state):
        spec = declared.spec
        reason = _not_armed(declared, data, rows)
        due_at = anchor = None
        counts_from = parse_due(spec.due).anchor
        entered: datetime | str = before.state_entered_at  # unused unless counted from entry
        if reason is None and counts_from == ENTERED:
            entered = _scope_entry(uow, plan, before, declared)
            published = spec.published is not None and data.get(spec.published) is not None
            if isinstance(entered, str) and not published:
                reason = entered
        if reason is None:
            at = entered if isinstance(entered, datetime) else before.state_entered_at
            due_at = planner.due(plan.target, spec, entered=at, data=data)
            anchor = planner.anchor(plan.target, spec, entered=at, data=data)
            if due_at is None:
                reason = f"no date to count from: {counts_from} is empty"
        if reason is not None:
            found.append(Arming(declared, None, None, None, f"not armed: {reason}"))
        else:
            assert due_at is not None
            found.append(Arming(declared, due_at, anchor, planner.last_day(due_at), None))
    return found


def _not_armed(declared: Declared, data: Mapping[str, Any], rows: list[Obligation]) -> str | None:
    spec = declared.spec
    if any(r.deadline == spec.id and r.status in OPEN_OBLIGATION for r in rows):
        return "an occurrence of it is open already"
    met = next((m.field for m in spec.met_by if m.field and data.get(m.field) is not None), None)
    if met is not None:
        return f"met already ({met} holds a value)"
    try:
        holds = applies(spec, data)
    except Exception as err:  # the same condition refuses the instance; said here too
        return f"its condition failed: {err}"
    if not holds:
        return f"its condition does not hold ({spec.when})"
    return None


def _scope_entry(
    uow: UnitOfWork, plan: Plan, instance: Instance, declared: Declared
) -> datetime | str:
    """When the instance entered ``declared``'s scope, or why that is not known."""
    if declared.states is None:
        return instance.created_at
    if declared.states == frozenset((plan.moves[instance.state].to,)):
        return instance.state_entered_at
    entry: datetime | None = None
    moves = [r for r in uow.audit.records(instance.id) if r.to_state is not None]
    for record in reversed(moves):
        if record.workflow_version == plan.source.version:
            move = plan.moves.get(record.to_state or "")
            state = None if move is None else move.to
        elif record.workflow_version == plan.target.version:
            state = record.to_state
        else:
            return f"its scope was entered on version {record.workflow_version}"
        if state is None or not declared.spans(state, plan.target.deadlines.finals):
            break
        entry = record.at
    if entry is None:  # pragma: no cover - its current state is in the scope
        return "the entry into its scope is not in the audit trail"
    return entry
