"""Checks of list filters: a filter naming nothing that exists is an error, not an empty list.

An empty answer to ``--state recieved`` reads as "nothing to do", which is the one thing a
list must never say by mistake. Every edge checks its filters here against the workflows the
list covers (one when a workflow is named, else every one the caller may read), and the
engine's error (:class:`~opcatflow.engine.errors.InvalidFilter`) carries a did-you-mean.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.errors import InvalidFilter
from opcatflow.engine.rows import ListHolds
from opcatflow.engine.suggest import did_you_mean

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_TEXT_ITEMS = {FieldType.STRING, FieldType.REF}


def check_workflow(workflow: str, known: Iterable[str]) -> None:
    """Raises: InvalidFilter, unless ``workflow`` is one of ``known``."""
    names = sorted(set(known))
    if workflow not in names:
        raise InvalidFilter(
            "workflow", workflow, f"no workflow {workflow!r}{did_you_mean(workflow, names)}"
        )


def check_state(state: str, workflows: Sequence[CompiledWorkflow]) -> None:
    """Raises: InvalidFilter, unless one of ``workflows`` has a state ``state``."""
    _check_name("state", state, {s for wf in workflows for s in wf.definition.states}, workflows)


def check_role(role: str, workflows: Sequence[CompiledWorkflow]) -> None:
    """Raises: InvalidFilter, unless one of ``workflows`` declares the role ``role``."""
    _check_name("role", role, {r for wf in workflows for r in wf.roles}, workflows)


def check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    """For an enumerated parameter (a status, a kind). Raises: InvalidFilter."""
    options = sorted(allowed)
    if value not in options:
        raise InvalidFilter(
            name,
            value,
            f"{name} {value!r} is not one of {', '.join(options)}{did_you_mean(value, options)}",
        )


def check_parameters(given: Iterable[str], known: Iterable[str]) -> None:
    """Raises: InvalidFilter for the first of ``given`` that is not ``known`` (a mistyped
    query parameter would otherwise be ignored, and the list unfiltered)."""
    names = sorted(set(known))
    for name in given:
        if name not in names:
            raise InvalidFilter(
                "parameter",
                name,
                f"unknown parameter {name!r}{did_you_mean(name, names)} "
                f"(known: {', '.join(names) or 'none'})",
            )


def typed_where(
    conditions: Mapping[str, str], workflows: Sequence[CompiledWorkflow]
) -> dict[str, Any]:
    """``FIELD=VALUE`` filters with each VALUE read as its field's type says (an integer,
    ``true``/``false``, else text), so the store compares like with like. On a list of text
    (or of register ids) it means "the list holds VALUE" (:class:`ListHolds`).

    Raises:
        InvalidFilter: a field none of ``workflows`` declares, a records field or a list of
            other items, a value that is not of the field's type, or an enum value the field
            does not allow.
    """
    typed: dict[str, Any] = {}
    for name, raw in conditions.items():
        specs = [wf.definition.fields[name] for wf in workflows if name in wf.definition.fields]
        if not specs:
            known = {f for wf in workflows for f in wf.definition.fields}
            raise InvalidFilter("where", name, f"unknown field {name!r}{did_you_mean(name, known)}")
        kind = specs[0].type
        if kind is FieldType.LIST and all(s.items in _TEXT_ITEMS for s in specs):
            typed[name] = ListHolds(raw)
            continue
        if kind in (FieldType.LIST, FieldType.RECORDS):
            raise InvalidFilter(
                "where", name, f"{name} is a list of entries: only lists of text are filtered on"
            )
        if kind is FieldType.INTEGER:
            if _INTEGER.fullmatch(raw) is None:
                raise InvalidFilter("where", name, f"{name} is an integer field, not {raw!r}")
            typed[name] = int(raw)
        elif kind is FieldType.BOOLEAN:
            if raw not in ("true", "false"):
                raise InvalidFilter("where", name, f"{name} is true or false, not {raw!r}")
            typed[name] = raw == "true"
        else:
            if all(s.type is FieldType.ENUM for s in specs):
                allowed = sorted({v for s in specs for v in s.values or ()})
                if raw not in allowed:
                    raise InvalidFilter(
                        "where",
                        name,
                        f"{name} is one of {', '.join(allowed)}, not {raw!r}"
                        + did_you_mean(raw, allowed),
                    )
            typed[name] = raw
    return typed


def _check_name(
    kind: str, value: str, known: set[str], workflows: Sequence[CompiledWorkflow]
) -> None:
    if value in known:
        return
    hint = did_you_mean(value, known)
    ids = sorted({wf.id for wf in workflows})
    if len(ids) == 1:
        raise InvalidFilter(kind, value, f"workflow {ids[0]!r} has no {kind} {value!r}{hint}")
    raise InvalidFilter(kind, value, f"no workflow has a {kind} {value!r}{hint}")
