"""Periods set per case (``type: period`` fields), held to their minimum.

A period field holds a duration given to one case, such as the reply period a report gives
an authority. Its ``min`` is a period or ``config:<key>``: the statutory minimum the NPM's
settings give that key (``minimums:``), else the key's configured duration. A case's period
shorter than that is refused: at the start (invalid data) and on a change (a refusal,
audited), so no case is ever given less than the law allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.durations import Duration, SettingRef, at_least, parse_duration, parse_period
from opcatflow.engine.settings import Settings


def minimum_of(settings: Settings, text: str) -> Duration:
    """The shortest period a ``min`` allows. Raises: SettingsError (an unknown key)."""
    period = parse_period(text)
    if isinstance(period, SettingRef):
        return settings.minimums.get(period.key) or settings.duration(period)
    return period


def below_minimum(
    settings: Settings,
    wf: CompiledWorkflow,
    data: Mapping[str, Any],
    before: Mapping[str, Any] | None = None,
) -> list[str]:
    """Why the period fields of ``data`` are refused: each one shorter than its minimum
    (with ``before``: only those that changed)."""
    problems = []
    for name, spec in wf.definition.fields.items():
        if spec.type is not FieldType.PERIOD or spec.min is None:
            continue
        value = data.get(name)
        if value is None or (before is not None and before.get(name) == value):
            continue
        minimum = minimum_of(settings, spec.min)
        if not at_least(parse_duration(value), minimum):
            problems.append(
                f"{name}: {value} is shorter than its minimum of {minimum} (min: {spec.min})"
            )
    return problems


__all__ = ["below_minimum", "minimum_of"]
