"""What ``validate`` checks of a definition's privacy keys: ``subject``, ``retention`` and
``erasable_by`` (see engine/erasure.py and engine/retention.py)."""

from __future__ import annotations

import re

from opcatflow.engine.definition import FieldType, WorkflowDefinition
from opcatflow.engine.durations import Duration, Unit, parse_duration
from opcatflow.engine.errors import Problem
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located

SUBJECT_TYPES = frozenset({FieldType.STRING, FieldType.TEXT})
_RETENTION = re.compile(r"^\s*(?P<duration>.+?)\s+after\s+closed\s*$")


def parse_retention(text: str) -> Duration:
    """``<n> <unit> after closed`` (counted from the day the case reached a final state).

    Raises:
        ValueError: malformed, or counted in hours.
    """
    match = _RETENTION.match(text)
    if match is None:
        raise ValueError(
            f"malformed retention {text!r}: expected '<number> <unit> after closed', e.g. "
            "'5 years after closed'"
        )
    duration = parse_duration(match.group("duration"))
    if duration.unit is Unit.HOURS:
        raise ValueError(
            f"retention {text!r} is in hours: count it in days, weeks, months or years"
        )
    return duration


def privacy_problems(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    problems: list[Problem] = []
    name = wf.subject
    if name is not None:
        spec = wf.fields.get(name)
        if spec is None:
            message = f"unknown field {name!r}{did_you_mean(name, wf.fields)}"
            problems.append(doc.problem(("subject",), message))
        elif not spec.personal:
            problems.append(
                doc.problem(
                    ("subject",),
                    f"subject {name!r} is not personal: the field naming the person a case "
                    "concerns must be marked 'personal: true' (it is then stored encrypted, "
                    "and indexed only by a keyed hash)",
                )
            )
        elif spec.type not in SUBJECT_TYPES:
            problems.append(
                doc.problem(
                    ("subject",),
                    f"subject {name!r} is {spec.type.value}: it must be a string or text field",
                )
            )
    if wf.retention is not None:
        try:
            parse_retention(wf.retention)
        except ValueError as err:
            problems.append(doc.problem(("retention",), str(err)))
        if not any(state.final for state in wf.states.values()):
            problems.append(
                doc.problem(
                    ("retention",),
                    "retention counts from a final state, and this workflow has none",
                )
            )
    for i, role in enumerate(wf.erasable_by):
        if role not in wf.roles:
            message = f"unknown role {role!r}{did_you_mean(role, wf.roles)}"
            problems.append(doc.problem(("erasable_by", i), message))
    return problems
