"""Checks of a definition's notifications that need the templates: run by
``opcatflow validate`` and when an application edge builds its engines.

Every problem is located in the definition file (``path:line:column``), like the engine's own.
"""

from __future__ import annotations

from collections.abc import Iterable

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.errors import Problem
from opcatflow.engine.sharing import PERSONS
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Path
from opcatflow.notifications.templates import TemplateSet


def check_workflow(
    wf: CompiledWorkflow,
    templates: TemplateSet,
) -> list[Problem]:
    """Problems with the templates a workflow's notifications name, and with the consent uses
    its address recipients claim (uses of the workflow's ``persons`` consents)."""
    problems: list[Problem] = []

    def add(loc: Path, message: str) -> None:
        if wf.doc is None:
            problems.append(Problem(f"<{wf.id} v{wf.version}>", 1, 1, message))
        else:
            problems.append(wf.doc.problem(loc, message))

    known = templates.names()
    fields = list(wf.definition.fields)
    checked: dict[str, list[str]] = {}
    persons = wf.definition.fields.get(PERSONS)
    consent = (persons.item or {}).get("uses") if persons is not None else None
    uses = set(consent.values or []) if consent and consent.type is FieldType.LIST else None
    for i, spec in enumerate(wf.definition.notifications):
        at: Path = ("notifications", i)
        if spec.template not in checked:
            checked[spec.template] = templates.check(spec.template, fields)
        for message in checked[spec.template]:
            hint = did_you_mean(spec.template, known) if message.startswith("unknown") else ""
            add((*at, "template"), message + hint)
        for j, to in enumerate(spec.to):
            if isinstance(to, str):
                continue
            for k, use in enumerate(to.consent_uses):
                if uses is None:
                    add(
                        (*at, "to", j, "consent_uses", k),
                        f"consent use {use!r}: the workflow records no consent (a "
                        f"{PERSONS!r} records field with 'uses')",
                    )
                elif use not in uses:
                    add(
                        (*at, "to", j, "consent_uses", k),
                        f"unknown consent use {use!r}{did_you_mean(use, uses)}",
                    )
    return sorted(problems, key=lambda p: (p.line, p.column))


def check_catalog(
    workflows: Iterable[CompiledWorkflow],
    templates: TemplateSet,
) -> list[Problem]:
    """:func:`check_workflow` over every workflow."""
    problems: list[Problem] = []
    for wf in workflows:
        problems += check_workflow(wf, templates)
    return problems
