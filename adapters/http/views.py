"""Engine objects as response bodies, with what the caller may not read withheld."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from opcatflow.adapters.http.problems import ApiProblem
from opcatflow.engine.audit import APPLIED, STARTED, AuditRecord
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldSpec, FieldType
from opcatflow.engine.instance import Instance
from opcatflow.notifications.redaction import WITHHELD


def etag(instance: Instance) -> str:
    """The instance's ETag: its version, as a strong entity tag."""
    return f'"{instance.version}"'


def _withhold(spec: FieldSpec) -> Any:
    return [WITHHELD] if spec.type is FieldType.LIST else WITHHELD


def instance_view(
    instance: Instance, wf: CompiledWorkflow, hidden: frozenset[str]
) -> dict[str, Any]:
    """The instance's JSON with every ``hidden`` field withheld, set or not (an empty value
    left visible would say that nobody is at risk, say)."""
    body = instance.as_json()
    data = body["data"]
    fields = wf.definition.fields
    withheld = sorted(hidden)
    for name in withheld:
        data[name] = _withhold(fields[name])
    body["withheld"] = withheld
    return body


_STORED = frozenset({STARTED, APPLIED})  # the records that carry data changes


def record_view(record: AuditRecord, hidden: frozenset[str]) -> dict[str, Any]:
    """An audit record; with anything personal hidden, its hashes and the reason withheld
    too (a keyed hash still says when two values are equal). Every record that stores data
    lists every hidden field as withheld, changed or not: which records changed a field is
    itself an answer (whether a written guess equalled the stored value, say)."""
    body = record.as_json()
    if hidden:
        changes = body["changes"]
        if body["outcome"] in _STORED:
            for name in hidden:
                changes[name] = [WITHHELD, WITHHELD]
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


def data_schema(
    workflow: str, fields: dict[str, FieldSpec], required: Iterable[str]
) -> dict[str, Any]:
    """A JSON Schema (2020-12) of a workflow's instance data, as ``data`` of a start."""
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        if spec.type is FieldType.LIST:
            assert spec.items is not None
            value = {"type": "array", "items": _scalar(spec.items, spec.values)}
        else:
            value = _scalar(spec.type, spec.values)
        prop: dict[str, Any] = {"anyOf": [value, {"type": "null"}]}
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
