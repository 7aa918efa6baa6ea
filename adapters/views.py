"""What a caller in given roles may see of an instance and its audit trail, for every edge
(the HTTP API, the CLI's ``--role``). Which fields are withheld is the engine's decision
(:meth:`~opcatflow.engine.compiled.CompiledWorkflow.withheld_fields`); this module only
applies it, the same way everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from opcatflow.engine.audit import APPLIED, STARTED, AuditRecord
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.instance import Instance
from opcatflow.notifications.redaction import WITHHELD

_STORED = frozenset({STARTED, APPLIED})  # the records that carry data changes


def withheld_data(data: dict[str, Any], wf: CompiledWorkflow, hidden: frozenset[str]) -> None:
    """Replace every ``hidden`` field of ``data`` (in place), set or not: an empty value
    left visible would say that nobody is at risk, say."""
    fields = wf.definition.fields
    for name in hidden:
        data[name] = [WITHHELD] if fields[name].type is FieldType.LIST else WITHHELD


def instance_view(
    instance: Instance, wf: CompiledWorkflow, hidden: frozenset[str]
) -> dict[str, Any]:
    """The instance's JSON with every ``hidden`` field withheld and named in ``withheld``."""
    body = instance.as_json()
    withheld_data(body["data"], wf, hidden)
    body["withheld"] = sorted(hidden)
    return body


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


def withheld_record(record: AuditRecord, hidden: frozenset[str]) -> AuditRecord:
    """:func:`record_view` as a record, for timelines (its hash no longer matches: display
    only)."""
    if not hidden:
        return record
    body = record_view(record, hidden)
    return record._replace(changes=json.dumps(body["changes"]), reason=body["reason"])
