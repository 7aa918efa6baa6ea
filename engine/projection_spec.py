"""What the report projection keeps of a workflow's instances (declared in the registry)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from opcatflow.engine.definition import FieldType

# The types a projected value may have: one plain value (or a list of them) that reads the
# same as text. Free text, datetimes of a person's life and records as a whole never go.
PROJECTABLE = frozenset(
    {
        FieldType.STRING,
        FieldType.ENUM,
        FieldType.BOOLEAN,
        FieldType.DATE,
        FieldType.DATETIME,
        FieldType.INTEGER,
    }
)
# Type names of later format versions that are plain values too (a reference holds an id).
PROJECTABLE_NAMES = frozenset({*(t.value for t in PROJECTABLE), "ref"})
STATE = "@state"
CREATED_AT = "@created_at"


@dataclass(frozen=True)
class Projection:
    """The fields of ``workflow`` that reports read: plain ``fields`` (a list field gives one
    row per item) and, per records field, the sub-fields of each entry (``records``)."""

    workflow: str
    fields: tuple[str, ...] = ()
    records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "workflow": self.workflow,
            "fields": sorted(self.fields),
            "records": {k: sorted(v) for k, v in sorted(self.records.items())},
        }


def projections_digest(projections: Mapping[str, Projection]) -> str:
    """A digest of what is projected: rows built under another digest must be rebuilt."""
    text = json.dumps([p.as_json() for _, p in sorted(projections.items())], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
