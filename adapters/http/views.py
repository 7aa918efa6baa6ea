"""Engine objects as response bodies, with what the caller may not read withheld."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from opcatflow.adapters.http.problems import ApiProblem
from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.definition import FieldSpec, FieldType, SubFieldSpec
from opcatflow.engine.instance import Instance
from opcatflow.engine.records import withhold_parts
from opcatflow.notifications.redaction import WITHHELD

_EMPTY: tuple[Any, ...] = (None, "", [])


def etag(instance: Instance) -> str:
    """The instance's ETag: its version, as a strong entity tag."""
    return f'"{instance.version}"'


def _withhold(value: Any) -> Any:
    return [WITHHELD] if isinstance(value, list) else WITHHELD


def instance_view(
    instance: Instance, hidden: frozenset[str], parts: Mapping[str, frozenset[str]] | None = None
) -> dict[str, Any]:
    """The instance's JSON with the ``hidden`` fields that hold a value withheld.

    ``parts`` names, for a hidden records field, its personal sub-fields: only their values
    are withheld, in every entry (without it, the whole field is)."""
    body = instance.as_json()
    data = body["data"]
    parts = parts or {}
    withheld = sorted(name for name in hidden if data.get(name) not in _EMPTY)
    for name in withheld:
        if name in parts:
            data[name] = withhold_parts(data[name], parts[name], WITHHELD)
        else:
            data[name] = _withhold(data[name])
    body["withheld"] = withheld
    return body


def _withhold_pair(pair: Any) -> Any:
    return [None if v is None else WITHHELD for v in pair] if isinstance(pair, list) else WITHHELD


def record_view(
    record: AuditRecord, hidden: frozenset[str], parts: Mapping[str, frozenset[str]] | None = None
) -> dict[str, Any]:
    """An audit record; with anything personal hidden, its hashes and the reason withheld
    too (a keyed hash still says when two values are equal). For a records field named in
    ``parts``, only the hashes of its personal sub-fields are withheld."""
    body = record.as_json()
    parts = parts or {}
    if hidden:
        changes = body["changes"]
        for name in hidden.intersection(changes):
            change = changes[name]
            if isinstance(change, dict):  # a records diff: {key: {sub-field: [old, new]}}
                subs = parts.get(name)
                changes[name] = {
                    key: {
                        sub: _withhold_pair(pair) if subs is None or sub in subs else pair
                        for sub, pair in entry.items()
                    }
                    if isinstance(entry, dict)
                    else WITHHELD
                    for key, entry in change.items()
                }
            else:
                changes[name] = _withhold_pair(change)
        if body["reason"] is not None:
            body["reason"] = WITHHELD
    return body


def encode_cursor(instance_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{instance_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """Raises: ApiProblem (400) for a cursor this API did not give out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, instance_id = text.partition(":")
    if kind != "after" or not instance_id:
        raise ApiProblem("malformed-request", "not a cursor this API gave out", status=400)
    return instance_id


_JSON_TYPES: dict[FieldType, dict[str, Any]] = {
    FieldType.STRING: {"type": "string"},
    FieldType.TEXT: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.DATETIME: {"type": "string", "format": "date-time"},
}


def _scalar(kind: FieldType, values: list[str] | None) -> dict[str, Any]:
    if kind is FieldType.ENUM:
        return {"enum": list(values or [])}
    return dict(_JSON_TYPES[kind])


def _value(spec: FieldSpec | SubFieldSpec) -> dict[str, Any]:
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
