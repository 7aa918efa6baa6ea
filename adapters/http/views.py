"""Engine objects as response bodies, with what the caller may not read withheld."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opcatflow.adapters.views import instance_view, record_view
from opcatflow.engine.definition import FieldSpec, FieldType, SubFieldSpec
from opcatflow.engine.instance import Instance
from opcatflow.engine.partial_dates import PATTERN
from opcatflow.engine.refs import ENTRY_ID

__all__ = ["data_schema", "etag", "instance_view", "record_view"]


def etag(instance: Instance) -> str:
    """The instance's ETag: its version, as a strong entity tag."""
    return f'"{instance.version}"'


_JSON_TYPES: dict[FieldType, dict[str, Any]] = {
    FieldType.STRING: {"type": "string"},
    FieldType.TEXT: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.DATETIME: {"type": "string", "format": "date-time"},
    FieldType.PERIOD: {"type": "string", "description": "a period, e.g. '2 months'"},
    FieldType.REF: {
        "type": "string",
        "pattern": ENTRY_ID.pattern,
        "description": "the id of a register entry (shown in views as {id, title})",
    },
}


def _scalar(kind: FieldType, values: list[str] | None) -> dict[str, Any]:
    if kind is FieldType.ENUM:
        return {"enum": list(values or [])}
    return dict(_JSON_TYPES[kind])


def _value(spec: FieldSpec | SubFieldSpec) -> dict[str, Any]:
    if isinstance(spec, FieldSpec) and spec.partial:
        return {"type": "string", "pattern": PATTERN, "description": "YYYY-MM-DD, YYYY-MM or YYYY"}
    if spec.type is FieldType.LIST:
        assert spec.items is not None
        return {"type": "array", "items": _scalar(spec.items, spec.values)}
    return _scalar(spec.type, spec.values)


def _records(spec: FieldSpec) -> list[dict[str, Any]]:
    """A records field: the full list of entries, or a change applied by key."""
    assert spec.item is not None
    subs: dict[str, Any] = {}
    for sub, sub_spec in spec.item.items():
        prop: dict[str, Any] = _value(sub_spec)
        if sub_spec.label:
            prop["title"] = sub_spec.label
        if sub_spec.personal:
            prop["x-personal"] = True
        subs[sub] = prop
    required = [n for n, s in spec.item.items() if s.required or n == spec.key]
    entry = {"type": "object", "properties": subs, "additionalProperties": False}
    edit = {**entry, "required": [spec.key]}
    numbered = spec.item[spec.key or ""].type is FieldType.INTEGER  # the engine numbers it
    appended = [n for n in required if not (numbered and n == spec.key)]
    entry["required"] = required
    change = {
        "type": "object",
        "properties": {
            "append": {"type": "array", "items": {**entry, "required": appended}},
            "edit": {"type": "array", "items": edit},
            "remove": {"type": "array", "items": subs[spec.key or ""]},
        },
        "additionalProperties": False,
        "minProperties": 1,
    }
    return [{"type": "array", "items": entry}, change]


def data_schema(
    workflow: str, fields: dict[str, FieldSpec], required: Iterable[str]
) -> dict[str, Any]:
    """A JSON Schema (2020-12) of a workflow's instance data, as ``data`` of a start."""
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        if spec.type is FieldType.RECORDS:
            prop: dict[str, Any] = {"anyOf": [*_records(spec), {"type": "null"}]}
        else:
            prop = {"anyOf": [_value(spec), {"type": "null"}]}
        if spec.label:
            prop["title"] = spec.label
        if spec.description:
            prop["description"] = spec.description
        if spec.personal:
            prop["x-personal"] = True
        properties[name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{workflow} instance data",
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
