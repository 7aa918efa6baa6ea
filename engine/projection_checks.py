"""What ``validate`` checks of a definition against the report projection registered for its
workflow: reports group only on plain, non-personal, non-confidential values, so a definition
that makes a projected field personal (or free text) is refused where that field is
declared."""

from __future__ import annotations

from opcatflow.engine.definition import FieldType, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.projection_spec import PROJECTABLE_NAMES, Projection
from opcatflow.engine.yamlsource import Located

_WHY = "the report projection reads it, and reports group on non-personal values only"


def _type_name(kind: FieldType, items: FieldType | None) -> str:
    return (items if kind is FieldType.LIST and items is not None else kind).value


def projection_problems(
    doc: Located, wf: WorkflowDefinition, projection: Projection | None
) -> list[Problem]:
    """A field the projection names that is personal, confidential or not a plain value. A
    field this version does not declare is no problem (other versions may)."""
    if projection is None:
        return []
    problems: list[Problem] = []
    for name in projection.fields:
        spec = wf.fields.get(name)
        if spec is None:
            continue
        at = ("fields", name)
        if spec.personal or spec.confidential:
            kind = "personal" if spec.personal else "confidential"
            problems.append(doc.problem(at, f"field {name!r} is {kind}: {_WHY}"))
        elif _type_name(spec.type, spec.items) not in PROJECTABLE_NAMES:
            problems.append(
                doc.problem(at, f"field {name!r} is {spec.type.value}: {_WHY} (plain values)")
            )
    for name, subs in projection.records.items():
        spec = wf.fields.get(name)
        if spec is None:
            continue
        if spec.type is not FieldType.RECORDS or spec.item is None:
            message = (
                f"field {name!r} is {spec.type.value}: the report projection reads it as records"
            )
            problems.append(doc.problem(("fields", name), message))
            continue
        for sub in subs:
            item = spec.item.get(sub)
            if item is None:
                continue
            where = ("fields", name, "item", sub)
            if item.personal:
                problems.append(doc.problem(where, f"sub-field {name}.{sub} is personal: {_WHY}"))
            elif _type_name(item.type, item.items) not in PROJECTABLE_NAMES:
                message = f"sub-field {name}.{sub} is {item.type.value}: {_WHY} (plain values)"
                problems.append(doc.problem(where, message))
    return problems
