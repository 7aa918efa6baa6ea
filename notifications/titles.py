"""The titles of the register entries a notification's instance refers to (a complaint's
place, a visit's team...), so a template says "Central Remand Prison", not its id.

Read in the transaction that writes the message, through the same unit of work, following
merges (a reference to a duplicate shows the entry it was merged into), as the entry holds
on the NPM's day of the occurrence (a renaming entered ahead of its day shows from that day).
A title is never personal data (a register's ``title_field`` is a plain field).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.registers import current_values, follow_merges


def title_fields(workflows: Iterable[CompiledWorkflow]) -> dict[str, str]:
    """Register id -> its title field, for every register among ``workflows``."""
    return {
        wf.id: wf.definition.as_register.title_field
        for wf in workflows
        if wf.definition.as_register is not None
    }


def reference_titles(
    uow: UnitOfWork,
    wf: CompiledWorkflow,
    data: Mapping[str, Any],
    titles: Mapping[str, str],
    today: date,
) -> dict[str, Any]:
    """Field -> the title of the entry it names (a list of titles for a list of references),
    as it holds on ``today`` (the NPM's day), for every reference field of ``wf`` (None when
    it holds no value); an id naming no entry, or an entry of a register ``titles`` does not
    list, stays as is."""

    def lookup(instance_id: str) -> Instance | None:
        try:
            return uow.instances.get(instance_id)
        except InstanceNotFound:
            return None

    def title(register: str, entry_id: Any) -> Any:
        entry = follow_merges(lookup, entry_id) if isinstance(entry_id, str) else None
        if entry is None or entry.workflow_id != register or register not in titles:
            return entry_id
        return current_values(entry.data, today).get(titles[register], entry_id)

    found: dict[str, Any] = {}
    for name, spec in wf.definition.fields.items():
        register, value = spec.register_id, data.get(name)
        if register is None:
            continue
        if value is None:
            found[name] = None
        elif spec.type is FieldType.LIST and isinstance(value, list):
            found[name] = [title(register, v) for v in value]
        else:
            found[name] = title(register, value)
    return found
