"""Request and response bodies, as the OpenAPI document describes them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from opcatflow.adapters.views import InstanceView
from opcatflow.engine.audit import AuditRecordJson, VerifyJson
from opcatflow.engine.inputs import check_data, check_text
from opcatflow.engine.instance import TriggerOptionJson
from opcatflow.engine.limits import REASON
from opcatflow.engine.refs import ENTRY_ID

NAME = r"^[a-z][a-z0-9_]*$"
TEXT = r"^[^\x00]*$"  # PostgreSQL cannot store NUL, and no person types it


def _no_nul(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The engine's own checks, first (mode="before"): past a limit or not Unicode, they
    # raise the engine's error, answered as its problem (422, 413), before anything reads,
    # hashes or stores the body.
    @field_validator("data", mode="before", check_fields=False)
    @classmethod
    def _data_limits(cls, value: Any) -> Any:
        if isinstance(value, dict):
            check_data(value)
        return value

    @field_validator("reason", "parent_id", mode="before", check_fields=False)
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            check_text(str(info.field_name), value, REASON if info.field_name == "reason" else None)
        return value

    @field_validator("data", check_fields=False)
    @classmethod
    def _data(cls, value: dict[str, Any]) -> dict[str, Any]:
        _no_nul(value)
        return value


class StartIn(_In):
    workflow: str = Field(pattern=NAME, max_length=64, description="Workflow id.")
    data: dict[str, Any] = Field(
        default_factory=dict, description="Field values (checked against the workflow's data)."
    )
    reason: str | None = Field(
        None, max_length=REASON.maximum, pattern=TEXT, description="Why, for the audit trail."
    )
    parent_id: str | None = Field(
        None, max_length=36, pattern=TEXT, description="A parent instance."
    )
    role: str | None = Field(
        None,
        max_length=64,
        pattern=NAME,
        description="Which of the key's roles acts; default: the first that may start it.",
    )
    version: int | None = Field(
        None, ge=1, le=1_000_000, description="A definition version; default: the latest."
    )
    id: str | None = Field(
        None,
        max_length=64,
        pattern=ENTRY_ID.pattern,
        description="For an entry of a register (place, authority, theme, person): the id it "
        "is known by, e.g. 'ombudsperson'; default: a new uuid. An id taken is refused.",
    )


class TransitionIn(_In):
    trigger: str = Field(max_length=64, pattern=NAME, description="The trigger to fire.")
    data: dict[str, Any] = Field(
        default_factory=dict, description="Fields to set with it (null clears a field)."
    )
    reason: str | None = Field(
        None, max_length=REASON.maximum, pattern=TEXT, description="Why, for the audit trail."
    )
    role: str | None = Field(
        None,
        max_length=64,
        pattern=NAME,
        description="Which of the key's roles acts; default: the first the engine lists for "
        "this trigger now.",
    )


# Response bodies the engine already shapes are its TypedDicts (declared once, beside the
# record and its ``as_json``), subclassed here only to keep their OpenAPI names.


class InstanceOut(InstanceView):
    """An instance as this key may see it: personal fields it may not read are replaced by
    ``"[withheld]"`` (``["[withheld]"]`` for a list) and named in ``withheld``."""


_NOTICES = Field(
    description="What the caller should know about the change, e.g. a deadline that was "
    "already overdue when the case was entered (recorded as overdue, its first alert queued)."
)


class StartedOut(InstanceOut):
    notices: Annotated[list[str], _NOTICES]


class FiredOut(InstanceOut):
    opened: Annotated[
        list[str], Field(description="Ids of the child instances the transition opened.")
    ]
    notices: Annotated[list[str], _NOTICES]


class InstancePage(BaseModel):
    items: list[InstanceOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: done.")


class TriggerOut(TriggerOptionJson):
    roles: Annotated[list[str], Field(description="The key's roles that may fire it.")]


class AuditRecordOut(AuditRecordJson):
    """One audit record. Personal values are keyed hashes, and ``[withheld]`` (with the
    reason) for a key that may not read every personal field of the workflow."""


class WorkflowOut(BaseModel):
    id: str
    version: int
    title: str
    description: str | None
    roles: dict[str, str]
    start_roles: list[str]
    states: list[str]
    initial: str
    finals: list[str]
    triggers: list[str]
    personal_fields: list[str]


class DeadlineOut(BaseModel):
    obligation_id: int
    instance_id: str
    workflow: str
    state: str
    deadline: str
    occurrence: int
    label: str | None
    kind: str = Field(description="due, milestone, or reminder (with reminders=true)")
    status: str = Field(description="pending, due (overdue), extended or paused")
    owed_by: str | None = Field(description="npm, state or un_body, when declared")
    due_at: datetime = Field(description="The instant it ends (UTC offset given)")
    due_on: date = Field(
        description="The last day to meet it, in the NPM's calendar and time zone, fixed when "
        "it was armed (what people read)"
    )
    last_day: date = Field(description="The same as due_on (kept for older clients)")
    fires_at: datetime = Field(description="When the scheduler acts on it (a reminder's own time)")
    paused: bool
    overdue: bool
    roles: list[str]
    summary: str | None = Field(description="The case's summary_field value, when declared")
    timed: bool = Field(description="Counted in hours: due at a time of day")


class DeadlinePage(BaseModel):
    items: list[DeadlineOut]
    more: int = Field(description="How many more follow this page")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: done.")
    timezone: str = Field(description="The NPM's time zone (IANA name) of every due_on")


class ObligationOut(BaseModel):
    """One occurrence of a deadline of a case, and what became of it."""

    id: int
    instance_id: str
    workflow: str
    state: str
    deadline: str
    occurrence: int
    scope: str
    anchor: str | None
    due_at: datetime
    due_on: date | None = Field(
        description="The last day, in the NPM's calendar and time zone, fixed when armed"
    )
    last_day: date | None
    status: str
    met_at: datetime | None
    met_by: str | None
    days_late: int | None
    note: str | None


class OutboxMessageOut(BaseModel):
    id: int
    instance_id: str | None
    event: str
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime
    idempotency_key: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class OutboxOut(BaseModel):
    counts: dict[str, int]
    messages: list[OutboxMessageOut]


class VerifyOut(VerifyJson):
    """The audit chain recomputed: every hash and link of every instance."""


class ReloadOut(BaseModel):
    """What a reload loaded: versions added, retired and made active again since the last."""

    reloaded: bool
    added: list[str]
    retired: list[str]
    activated: list[str]
    problems: list[str]


class MigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(max_length=1_000_000, description="The migration plan, as YAML text.")
    dry_run: bool = Field(default=True, description="Only say what would happen (default).")
    batch: int = Field(default=100, ge=1, le=10_000, description="Instances read at a time.")
    mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="For a plan that converts free text to register ids: register -> {free "
        "text as stored: entry id}, for the values no entry matches by title (as "
        "`opcatflow migrate --map`).",
    )


class MigrationOut(BaseModel):
    """What a migration did (or would do) to each running instance of the ``from`` version."""

    workflow: str
    from_: int = Field(alias="from")
    to: int
    plan: str
    dry_run: bool
    counts: dict[str, int]
    finished_kept: int
    instances: list[dict[str, Any]]


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    schema_revision: str
