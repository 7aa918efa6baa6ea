"""Embargoes: fields withheld while a flag is set and the instance is in given states (the
planned dates of an unannounced visit, until the visit has started).

One rule, read per instance: :meth:`~opcatflow.engine.compiled.CompiledWorkflow.withheld_fields`
asks :func:`embargoed_fields` for a caller's roles, and every message (notifications,
webhooks, calendar exports) asks it with ``roles=None``, since a message may be forwarded
to anyone. Without an instance the answer is the worst case over every instance (what a
list filter on a field could reveal), so a filter is never an oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opcatflow.engine.definition import EmbargoSpec, WorkflowDefinition

EVERY_MESSAGE = None  # ``roles`` for a message: it applies whoever receives it


def in_force(embargo: EmbargoSpec, state: str, data: Mapping[str, Any]) -> bool:
    """Whether ``embargo`` holds for an instance in ``state`` with ``data``."""
    return data.get(embargo.flag) is True and state in embargo.while_in


def applies_to(embargo: EmbargoSpec, roles: Iterable[str] | None) -> bool:
    """Whether a caller holding ``roles`` is kept from the embargoed values: when none of its
    roles is outside ``from_roles`` (as a personal field, a caller reads what one of its
    roles may). ``None`` is a message: always."""
    if roles is None:
        return True
    return frozenset(roles) <= frozenset(embargo.from_roles)


def _holding(
    definition: WorkflowDefinition,
    roles: Iterable[str] | None,
    state: str | None,
    data: Mapping[str, Any] | None,
) -> list[EmbargoSpec]:
    held = None if roles is None else frozenset(roles)
    return [
        e
        for e in definition.embargoes
        if applies_to(e, held) and (state is None or in_force(e, state, data or {}))
    ]


def embargoed_fields(
    definition: WorkflowDefinition,
    roles: Iterable[str] | None,
    state: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> frozenset[str]:
    """The fields withheld from ``roles`` (``None``: a message) on an instance in ``state``
    with ``data``; with no ``state``, those withheld on some instance (the worst case)."""
    return frozenset(name for e in _holding(definition, roles, state, data) for name in e.fields)


def embargoed_deadlines(
    definition: WorkflowDefinition,
    roles: Iterable[str] | None,
    state: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> frozenset[str]:
    """The deadlines whose due dates are withheld, as :func:`embargoed_fields` says."""
    return frozenset(name for e in _holding(definition, roles, state, data) for name in e.deadlines)
