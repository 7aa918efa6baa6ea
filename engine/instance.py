"""What callers get back: plain, immutable views of stored instances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from opcatflow.engine.jsontypes import Timestamp


class InstanceJson(TypedDict):
    """An instance as JSON (:meth:`Instance.as_json`)."""

    id: str
    workflow_id: str
    workflow_version: int
    state: str
    data: dict[str, Any]
    version: Annotated[
        int, Field(description="Starts at 1, one more on every change; also the HTTP ETag.")
    ]
    parent_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    state_entered_at: Timestamp


@dataclass(frozen=True, slots=True)
class Instance:
    """One running (or finished) workflow instance, as stored.

    ``data`` is a read-only view of a dict the instance made for itself from what it was
    given (a dict, or another mapping or view), so nothing the caller holds can change it; a
    store may keep an instance as it is when its values are immutable.
    """

    id: str
    workflow_id: str
    workflow_version: int
    state: str
    data: Mapping[str, Any]
    version: int
    parent_id: str | None
    created_at: datetime
    updated_at: datetime
    state_entered_at: datetime
    audit_seq: int
    audit_head: str

    def __post_init__(self) -> None:
        # Always a copy, even of a view: a view may be of a dict the caller still holds.
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def as_json(self) -> InstanceJson:
        return {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "state": self.state,
            "data": dict(self.data),
            "version": self.version,
            "parent_id": self.parent_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "state_entered_at": self.state_entered_at.isoformat(),
        }


class TriggerOptionJson(TypedDict):
    """A :class:`TriggerOption` as JSON."""

    trigger: str
    label: str | None
    dest: str | None
    ready: Annotated[
        bool, Field(description="Its guards pass now (for at least one of the roles).")
    ]
    blocked_by: str | None


@dataclass(frozen=True, slots=True)
class TriggerOption:
    """A trigger the caller's role may fire from the current state, and whether it would pass."""

    trigger: str
    label: str | None
    dest: str | None
    ready: bool
    blocked_by: str | None = None

    def as_json(self) -> TriggerOptionJson:
        return {
            "trigger": self.trigger,
            "label": self.label,
            "dest": self.dest,
            "ready": self.ready,
            "blocked_by": self.blocked_by,
        }
