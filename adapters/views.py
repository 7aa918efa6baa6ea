"""What a caller in given roles may see of an instance and its audit trail, for every edge
(the HTTP API, the CLI's ``--role``). Which fields are withheld is the engine's decision
(:meth:`~opcatflow.engine.compiled.CompiledWorkflow.withheld_fields`); this module only
applies it, the same way everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opcatflow.engine.audit import APPLIED, STARTED, AuditRecord, AuditRecordJson
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.instance import Instance, InstanceJson
from opcatflow.engine.records import withhold_parts
from opcatflow.engine.refs import RefField
from opcatflow.engine.registers import RegisterEntry
from opcatflow.notifications.redaction import WITHHELD

_STORED = frozenset({STARTED, APPLIED})  # the records that carry data changes


def withheld_data(data: dict[str, Any], wf: CompiledWorkflow, hidden: frozenset[str]) -> None:
    """Replace every ``hidden`` field of ``data`` (in place), set or not: an empty value
    left visible would say that nobody is at risk, say. Of a records field with personal
    sub-fields, only those sub-fields' values are withheld, in every entry."""
    fields = wf.definition.fields
    parts = wf.schema.personal_parts
    for name in hidden:
        if name in parts and data.get(name):
            data[name] = withhold_parts(data[name], parts[name], WITHHELD)
        elif fields[name].type in (FieldType.LIST, FieldType.RECORDS):
            data[name] = [WITHHELD]
        else:
            data[name] = WITHHELD


class InstanceView(InstanceJson):
    """An instance as one reader may see it."""

    withheld: list[str]


def ref_ids(instance: Instance, wf: CompiledWorkflow) -> list[str]:
    """The register entry ids ``instance`` refers to (to read their titles at once)."""
    return [i for ref in wf.refs for i in ref.ids(instance.data)]


def _shown(entry_id: Any, entries: Mapping[str, RegisterEntry]) -> Any:
    # The entry the id names now (a merged one's survivor), by its title; an id naming no
    # entry (never written that way, but a register may be erased) keeps its id alone.
    if not isinstance(entry_id, str):
        return entry_id
    entry = entries.get(entry_id)
    return {"id": entry_id, "title": None} if entry is None else entry.as_ref()


def _show_ref(data: dict[str, Any], ref: RefField, entries: Mapping[str, RegisterEntry]) -> None:
    value = data.get(ref.field)
    if value is None:
        return
    if ref.sub is not None:
        data[ref.field] = [
            {**e, ref.sub: _shown(e.get(ref.sub), entries)} if isinstance(e, dict) else e
            for e in value
        ]
    elif ref.many:
        data[ref.field] = [_shown(v, entries) for v in value]
    else:
        data[ref.field] = _shown(value, entries)


def instance_view(
    instance: Instance,
    wf: CompiledWorkflow,
    hidden: frozenset[str],
    entries: Mapping[str, RegisterEntry] | None = None,
) -> InstanceView:
    """The instance's JSON with every ``hidden`` field withheld and named in ``withheld``.
    With ``entries`` (:meth:`~opcatflow.engine.registers.Registers.titles` of its
    :func:`ref_ids`), each reference is shown as ``{id, title}``."""
    body: InstanceView = {**instance.as_json(), "withheld": sorted(hidden)}
    if entries is not None:
        for ref in wf.refs:
            _show_ref(body["data"], ref, entries)
    withheld_data(body["data"], wf, hidden)
    return body


def _withhold_pair(pair: Any) -> Any:
    return [None if v is None else WITHHELD for v in pair] if isinstance(pair, list) else WITHHELD


def _withhold_entries(change: dict[str, Any], subs: frozenset[str]) -> dict[str, Any]:
    # a records diff: {key: {sub-field: [old, new]}}; only personal sub-fields are withheld
    return {
        key: {sub: _withhold_pair(pair) if sub in subs else pair for sub, pair in entry.items()}
        if isinstance(entry, dict)
        else WITHHELD
        for key, entry in change.items()
    }


def record_view(
    record: AuditRecord,
    hidden: frozenset[str],
    parts: Mapping[str, frozenset[str]] | None = None,
) -> AuditRecordJson:
    """An audit record; with anything personal hidden, its hashes and the reason withheld
    too (a keyed hash still says when two values are equal). Every record that stores data
    lists every hidden field as withheld, changed or not: which records changed a field is
    itself an answer (whether a written guess equalled the stored value, say). For a records
    field named in ``parts`` (its personal sub-fields), only those sub-fields' hashes are
    withheld from the entries it changed."""
    body = record.as_json()
    parts = parts or {}
    if hidden:
        changes = body["changes"]
        if body["outcome"] in _STORED:
            for name in hidden:
                change = changes.get(name)
                if name in parts and isinstance(change, dict):
                    changes[name] = _withhold_entries(change, parts[name])
                else:
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
