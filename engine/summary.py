"""What a list row or a calendar event may say about a case besides its id.

A definition may name a ``summary_field`` (a reference number, a case title): lists, the
deadlines and calendar feeds show its value beside the id. Calendars sync to services
outside the NPM, so the field must not be personal: ``validate`` refuses a personal one, and
:func:`summary_of` returns nothing for one anyway (a stored copy of a definition compiled in
compatibility mode is not refused, so the refusal is here too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located

SUMMARY_TYPES = frozenset(
    {FieldType.STRING, FieldType.TEXT, FieldType.INTEGER, FieldType.ENUM, FieldType.DATE}
)
"""Field types whose one value reads as a case's summary."""

SUMMARY_WIDTH = 80
"""The most characters of a summary (a calendar event's title, a table cell)."""


def summary_of(wf: CompiledWorkflow, data: Mapping[str, Any]) -> str | None:
    """The case's summary: its ``summary_field`` value on one line, at most
    :data:`SUMMARY_WIDTH` characters (``None``: no summary field, no value, or a field that is
    personal or withheld)."""
    name = wf.definition.summary_field
    if name is None:
        return None
    spec = wf.definition.fields.get(name)
    if spec is None or spec.personal or spec.personal_parts or spec.type not in SUMMARY_TYPES:
        return None
    value = data.get(name)
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def summary_problems(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    """Problems of a definition's ``summary_field``: a field it does not declare, a personal
    one (calendars sync to outside services), or one whose value is not one short text."""
    name = wf.summary_field
    if name is None:
        return []
    loc = ("summary_field",)
    spec = wf.fields.get(name)
    if spec is None:
        return [doc.problem(loc, f"unknown field {name!r}{did_you_mean(name, wf.fields)}")]
    if spec.personal or spec.personal_parts:
        return [
            doc.problem(
                loc,
                f"summary_field {name!r} is personal: summaries are shown in lists and "
                "calendars that sync to services outside the NPM; name a field that is not "
                "personal (a reference number, a case title)",
            )
        ]
    if spec.type not in SUMMARY_TYPES:
        kinds = ", ".join(sorted(t.value for t in SUMMARY_TYPES))
        return [
            doc.problem(
                loc, f"summary_field {name!r} is {spec.type.value}: it must be one of {kinds}"
            )
        ]
    return []


def label_warnings(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    """Warnings (not problems): deadlines without a ``label``, which lists, reminders and
    calendars can then only name by their id."""
    where: list[tuple[tuple[str | int, ...], str | None, str]] = [
        (("states", state, "deadlines", i), d.label, d.id)
        for state, spec in wf.states.items()
        for i, d in enumerate(spec.deadlines)
    ]
    where += [(("deadlines", i), d.label, d.id) for i, d in enumerate(wf.deadlines)]
    return [
        doc.problem(
            at, f"warning: deadline {name!r} has no label: lists and calendars will show its id"
        )
        for at, label, name in where
        if not label
    ]
