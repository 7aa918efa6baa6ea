"""What the engine is given, checked against :mod:`opcatflow.engine.limits` before any
transaction: who acts and why, and the data, as text, sizes and shapes.

Every check raises :class:`~opcatflow.engine.errors.LimitExceeded` or
:class:`~opcatflow.engine.errors.InvalidText`, naming what went past which limit and never
echoing the value (it may be personal data, or not printable).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from opcatflow.engine import limits as lim
from opcatflow.engine.errors import InvalidText, LimitExceeded

# A lone surrogate: Python's stand-in for an unpaired UTF-16 half ("\ud800" in JSON) and for
# each byte that was not UTF-8 (argv and environment, decoded with surrogateescape).
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(where: str, value: str, limit: lim.Limit | None = None) -> None:
    """Refuse text that is not Unicode scalar values, or longer than ``limit``."""
    if not value.isascii():
        found = _SURROGATE.search(value)
        if found is not None:
            raise InvalidText(where, found.start())
    if limit is not None and len(value) > limit.maximum:
        raise LimitExceeded(limit, where, len(value))


def check_call(
    *, actor: str, role: str, reason: str | None = None, trigger: str | None = None
) -> None:
    """Refuse who acts, in what role, with which trigger and why, past their limits."""
    check_text("actor", actor, lim.ACTOR)
    check_text("role", role, lim.ROLE)
    if trigger is not None:
        check_text("trigger", trigger, lim.TRIGGER)
    if reason is not None:
        check_text("reason", reason, lim.REASON)


def check_data(data: Mapping[str, Any], where: str = "data") -> None:
    """Refuse data that is not plain text, numbers, lists and objects within the limits:
    text valid and no longer than the longest field allows, lists, integers and nesting
    bounded, and the whole no larger than an instance's data may be. Each field's own type
    and length are checked by the workflow's schema afterwards.

    Walks without recursion, so data nested 100,000 deep is refused, not a RecursionError.
    """
    stack: list[tuple[str, Any, int]] = [(where, data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            check_text(path, value, lim.TEXT)
        elif isinstance(value, bool) or value is None or isinstance(value, float | date):
            continue
        elif isinstance(value, int):
            if abs(value) > lim.INTEGER.maximum:
                raise LimitExceeded(lim.INTEGER, path)
        elif isinstance(value, Mapping):
            if depth > lim.JSON_DEPTH.maximum:
                raise LimitExceeded(lim.JSON_DEPTH, path)
            for key, item in value.items():
                if isinstance(key, str):  # other keys: the schema names them unknown
                    check_text(f"{path} (a key)", key, lim.STRING)
                stack.append((f"{path}.{key}", item, depth + 1))
        elif isinstance(value, list | tuple):
            if depth > lim.JSON_DEPTH.maximum:
                raise LimitExceeded(lim.JSON_DEPTH, path)
            if len(value) > lim.LIST.maximum:
                raise LimitExceeded(lim.LIST, path, len(value))
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
    check_size(data, where)


def check_size(data: Mapping[str, Any], where: str = "data") -> None:
    """Refuse data larger, as UTF-8 JSON, than an instance's data may be."""
    if not data:  # most fires supply nothing: "{}" is within any limit
        return
    size = len(json.dumps(data, ensure_ascii=False, default=str).encode())
    if size > lim.DATA.maximum:
        raise LimitExceeded(lim.DATA, where, size)
