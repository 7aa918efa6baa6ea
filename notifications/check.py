"""Checks of a definition's notifications that need the templates: run by
``opcatflow validate`` and when an application edge builds its engines.

Every problem is located in the definition file (``path:line:column``), like the engine's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.errors import Problem
from opcatflow.engine.sharing import PERSONS
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Path
from opcatflow.notifications.templates import TemplateSet

# What an NPM without a ``languages`` setting writes in (the templates' fallback language);
# the bundled templates exist in English, French and Spanish.
DEFAULT_LANGUAGES = ("en",)


def check_workflow(
    wf: CompiledWorkflow,
    templates: TemplateSet,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
) -> list[Problem]:
    """Problems with the templates a workflow's notifications and overdue alerts name (each
    must exist in every language of ``languages``), and with the consent uses its address
    recipients claim (uses of the workflow's ``persons`` consents)."""
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
    catalogue = templates.catalogue()

    def check_template(loc: Path, name: str) -> None:
        if name not in checked:
            found = templates.check(name, fields)
            if not found and name in catalogue:
                missing = [lang for lang in languages if lang not in catalogue[name]]
                if missing:
                    found = [
                        f"template {name!r} has no {', '.join(missing)} version (languages "
                        f"configured: {', '.join(languages)}); add {name}.{missing[0]}.jinja"
                    ]
            checked[name] = found
        for message in checked[name]:
            hint = did_you_mean(name, known) if message.startswith("unknown") else ""
            add(loc, message + hint)

    for declared in wf.deadlines.declared.values():
        for j, step in enumerate(declared.spec.overdue_alerts):
            check_template((*declared.at, "overdue_alerts", j, "template"), step.template)
    for i, spec in enumerate(wf.definition.notifications):
        at: Path = ("notifications", i)
        check_template((*at, "template"), spec.template)
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
    languages: Sequence[str] = DEFAULT_LANGUAGES,
) -> list[Problem]:
    """:func:`check_workflow` over every workflow."""
    problems: list[Problem] = []
    for wf in workflows:
        problems += check_workflow(wf, templates, languages)
    return problems
