"""The report projection: the rows a write of an instance leaves in ``report_facts``, and
the rebuild of every row (a new database revision, or a release that projects more).

A value is projected only if the instance's own version declares it as a plain value that
is neither personal nor sealed: ``validate`` refuses a loaded definition that would make a
projected field personal, and this module checks again per version, so a stored copy of an
older version never leaks one either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.crypto.cipher import ErasedValue
from opcatflow.engine.definition import FieldType
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.projection_spec import (
    CREATED_AT,
    PROJECTABLE_NAMES,
    STATE,
    Projection,
    projections_digest,
)
from opcatflow.engine.rows import Fact

WorkflowOf = Callable[[str, int], CompiledWorkflow]
REBUILD_PAGE = 500


def _text(value: Any) -> str | None:
    """A plain value as projected text; ``None`` for no value or one that is not plain."""
    if value is None or isinstance(value, ErasedValue):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return None  # an object (a partial date is text already): not a plain value


def _plain(kind: FieldType, items: FieldType | None) -> bool:
    return (items if kind is FieldType.LIST and items is not None else kind).value in (
        PROJECTABLE_NAMES
    )


def facts_of(projection: Projection, wf: CompiledWorkflow, instance: Instance) -> list[Fact]:
    """The projected rows of ``instance`` (its data clear, as the engine holds it)."""
    facts = [Fact(STATE, "", instance.state), Fact(CREATED_AT, "", instance.created_at.isoformat())]
    declared = wf.definition.fields
    sealed = wf.schema.sealed
    data = instance.data
    for name in projection.fields:
        spec = declared.get(name)
        if spec is None or spec.personal or name in sealed or not _plain(spec.type, spec.items):
            continue
        value = data.get(name)
        values = value if isinstance(value, list | tuple) else [value]
        single = not isinstance(value, list | tuple)
        for i, item in enumerate(values):
            text = _text(item)
            if text is not None:
                facts.append(Fact(name, "" if single else str(i), text))
    for name, subs in projection.records.items():
        spec = declared.get(name)
        entries = data.get(name)
        if spec is None or spec.item is None or spec.key is None or not isinstance(entries, list):
            continue
        wanted = [
            s
            for s in subs
            if s in spec.item and not spec.item[s].personal and _plain(spec.item[s].type, None)
        ]
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            key = _text(entry.get(spec.key))
            if key is None:
                continue
            for sub in wanted:
                text = _text(entry.get(sub))
                if text is not None:
                    facts.append(Fact(f"{name}.{sub}", key, text))
    return facts


class Projector:
    """Writes an instance's projected rows in the unit of work that writes the instance."""

    def __init__(self, projections: Mapping[str, Projection], workflow_of: WorkflowOf) -> None:
        self.projections = projections
        self._workflow_of = workflow_of
        self.digest = projections_digest(projections)

    def __call__(self, uow: UnitOfWork, instance: Instance) -> None:
        projection = self.projections.get(instance.workflow_id)
        if projection is None:
            return
        wf = self._workflow_of(instance.workflow_id, instance.workflow_version)
        uow.reports.replace(instance.workflow_id, instance.id, facts_of(projection, wf, instance))


def instance_pages(uow: UnitOfWork, workflow: str) -> Iterator[list[Instance]]:
    """Every instance of ``workflow``, a page at a time (clear data through ``uow``)."""
    after: tuple[datetime, str] | None = None
    while True:
        page = uow.instances.query(workflow=workflow, after=after, limit=REBUILD_PAGE)
        if page:
            yield page
        if len(page) < REBUILD_PAGE:
            return
        last = page[-1]
        after = (last.created_at, last.id)
