"""The definition format: pydantic models for one workflow file, validated at the boundary.

These models check shape and types only. Cross-references (states, roles, guards, fields)
are checked by :mod:`opcatflow.engine.validation`, which knows every problem's position.
``model_json_schema()`` of :class:`WorkflowDefinition` is the format's JSON Schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from opcatflow.engine.durations import parse_due, parse_offset, parse_period
from opcatflow.engine.limits import STRING, TEXT, Limit

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    LIST = "list"
    RECORDS = "records"
    PERIOD = "period"  # a duration such as '2 months', set per case (e.g. a reply period)
    REF = "ref"  # the id of an entry of a register (a workflow declaring 'register:')


# The types a record's key may have: values that read the same in JSON and in an audit record.
KEY_TYPES = frozenset(
    {FieldType.STRING, FieldType.INTEGER, FieldType.DATE, FieldType.ENUM, FieldType.REF}
)

# "register" is an attribute of every pydantic model (abc's), hence the aliases below
REGISTER_DOC = (
    "For a ref field (or a list of refs): the id of the register workflow whose entries it "
    "names, e.g. 'place'."
)


def _check_scalar_shape(
    kind: FieldType, items: FieldType | None, values: list[str] | None, register: str | None
) -> None:
    item = items if kind is FieldType.LIST else kind
    if item is FieldType.REF and register is None:
        raise ValueError("a ref field needs 'register': the register whose entries it names")
    if item is not FieldType.REF and register is not None:
        raise ValueError("'register' is only for ref fields (or lists of refs)")
    if kind is FieldType.LIST and items is None:
        raise ValueError("a list field needs 'items' (its item type)")
    if kind is not FieldType.LIST and items is not None:
        raise ValueError("'items' is only for list fields")
    if item is FieldType.LIST:
        raise ValueError("lists of lists are not supported")
    if item is FieldType.RECORDS:
        raise ValueError("records are not supported inside a list or a record")
    if kind is FieldType.LIST and item is FieldType.PERIOD:
        raise ValueError("a period is one value: lists of periods are not supported")
    if item is FieldType.ENUM and not values:
        raise ValueError("an enum needs 'values'")
    if item is not FieldType.ENUM and values is not None:
        raise ValueError("'values' is only for enum fields")


class SubFieldSpec(_Model):
    """One sub-field of the entries of a ``records`` field: any field type but ``records``."""

    type: FieldType
    label: str | None = None
    description: str | None = None
    required: bool = Field(False, description="Every entry must have a value for it.")
    personal: bool = Field(
        False,
        description="Personal data: hashed in the audit trail, redacted like a personal "
        "field (the entry's other sub-fields stay readable).",
    )
    values: list[str] | None = Field(None, description="Allowed values (enum, list of enum).")
    items: FieldType | None = Field(None, description="Item type of a list.")
    register_id: Name | None = Field(None, alias="register", description=REGISTER_DOC)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        _check_scalar_shape(self.type, self.items, self.values, self.register_id)
        return self


TEXT_LIMITS = {FieldType.STRING: STRING, FieldType.TEXT: TEXT}


class FieldSpec(_Model):
    """One field of the instance data."""

    type: FieldType
    label: str | None = None
    description: str | None = None
    required: bool = Field(False, description="Must be supplied when the instance starts.")
    personal: bool = Field(
        False,
        description="Personal data of a person deprived of liberty: never written to the "
        "audit trail, and redacted from notifications and exports without consent.",
    )
    confidential: bool = Field(
        False,
        description="Not personal data, but kept from anyone holding the database: stored "
        "encrypted (as personal values are) and only as a keyed hash in the audit trail; "
        "readable by every role that reads the instance, and never a query filter.",
    )
    values: list[str] | None = Field(None, description="Allowed values (enum, list of enum).")
    items: FieldType | None = Field(None, description="Item type of a list.")
    register_id: Name | None = Field(None, alias="register", description=REGISTER_DOC)
    visible_to: list[Name] | None = Field(
        None,
        description="For a personal field (or records with personal sub-fields): the roles "
        "that may read its personal values through the HTTP API (others see them redacted). "
        "Default: the workflow's 'personal_visible_to'.",
    )
    item: dict[Name, SubFieldSpec] | None = Field(
        None,
        description="For records: the sub-fields of each entry (sub-field name -> its spec).",
    )
    key: Name | None = Field(
        None,
        description="For records: the sub-field that identifies an entry (unique, never "
        "personal; string, integer, date or enum). An integer key may be left out when "
        "appending: the engine numbers the entry.",
    )
    append_only: bool = Field(
        False,
        description="For records: entries may be added, never edited or removed (refused).",
    )
    write_roles: list[Name] | None = Field(
        None,
        description="Only callers in these roles may write this field, on top of the write "
        "set of the transition (or start) they fire. Default: any role that may fire a "
        "transition writing it. Writes by actions and the scheduler are system writes and "
        "are not restricted.",
    )
    max_length: int | None = Field(
        None,
        ge=1,
        description="For text (a string or text field, or a list of them: each item): the "
        "most characters a value may have, at most the global limit (string: 1,000; text: "
        "100,000; see docs/limits.md).",
    )
    partial: bool = Field(
        False,
        description="For a date field: also accept a month (YYYY-MM) or a year (YYYY) when "
        "the source gives no day; stored as entered, and counted as the last day of that "
        "period (an obligation due in '2019' is owed until 31 December 2019).",
    )
    min: str | None = Field(
        None,
        description="For a period field: the shortest period a case may be given, e.g. "
        "'config:recommendation.reply' (the statutory minimum the settings give that key under "
        "'minimums', else its configured duration) or '1 month'. A shorter one is refused.",
    )

    def length_limit(self) -> Limit | None:
        """The limit on this field's text (or each item's): the global one for its type,
        lowered by ``max_length``."""
        item = self.items if self.type is FieldType.LIST else self.type
        limit = TEXT_LIMITS.get(item) if item is not None else None
        if limit is None or self.max_length is None:
            return limit
        return Limit(limit.name, min(self.max_length, limit.maximum), limit.unit)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.personal and self.confidential:
            raise ValueError(
                "a personal field is stored encrypted already: 'confidential' adds nothing"
            )
        if self.type is not FieldType.RECORDS:
            if self.item is not None or self.key is not None or self.append_only:
                raise ValueError("'item', 'key' and 'append_only' are only for records fields")
            _check_scalar_shape(self.type, self.items, self.values, self.register_id)
            self._check_max_length()
            if self.partial and self.type is not FieldType.DATE:
                raise ValueError("'partial' is only for date fields")
            if self.min is not None:
                if self.type is not FieldType.PERIOD:
                    raise ValueError("'min' is only for period fields")
                parse_period(self.min)
            return self
        if self.items is not None or self.values is not None or self.register_id is not None:
            raise ValueError(
                "a records field takes 'item' (its sub-fields), not 'items'/'values'/'register'"
            )
        if not self.item:
            raise ValueError("a records field needs 'item': its sub-fields")
        if self.personal or self.confidential:
            raise ValueError(
                "a records field is not personal or confidential as a whole: mark its "
                "personal sub-fields"
            )
        if self.key is None:
            raise ValueError("a records field needs 'key': the sub-field naming an entry")
        key = self.item.get(self.key)
        if key is None:
            raise ValueError(f"key {self.key!r} is not one of its sub-fields")
        if key.type not in KEY_TYPES or key.personal:
            raise ValueError(
                f"key {self.key!r} must be a string, integer, date, enum or ref sub-field that is "
                "not personal (it names the entry in the audit trail)"
            )
        if self.max_length is not None:
            raise ValueError("'max_length' is only for string and text fields")
        if self.partial:
            raise ValueError("'partial' is only for date fields")
        return self

    def _check_max_length(self) -> None:
        if self.max_length is None:
            return
        item = self.items if self.type is FieldType.LIST else self.type
        limit = TEXT_LIMITS.get(item) if item is not None else None
        if limit is None:
            raise ValueError("'max_length' is only for string and text fields")
        if self.max_length > limit.maximum:
            raise ValueError(
                f"max_length {self.max_length:,} is above the global {limit.describe()}"
            )

    @property
    def personal_parts(self) -> frozenset[str]:
        """For records: the personal sub-fields."""
        return frozenset(n for n, s in (self.item or {}).items() if s.personal)


class NotifyOn(_Model):
    """When a notification is emitted: exactly one of these."""

    enter: Name | None = Field(None, description="On entering this state.")
    transition: Name | None = Field(None, description="When this trigger is applied.")
    deadline: Name | None = Field(None, description="On a deadline of this id.")
    at: Literal["reminder", "due"] = "due"

    @model_validator(mode="after")
    def _one(self) -> Self:
        if sum(x is not None for x in (self.enter, self.transition, self.deadline)) != 1:
            raise ValueError("give exactly one of 'enter', 'transition', 'deadline'")
        return self


class RecipientSpec(_Model):
    """One kind of recipient of a notification: exactly one of ``role``, ``assignees``,
    ``address``. A plain name in ``to`` is short for ``{role: name}``."""

    role: Name | None = Field(
        None, description="Everyone the recipients directory gives this role."
    )
    assignees: Name | None = Field(
        None,
        description="A field holding the directory ids of the people assigned to the instance "
        "(text, or a list of text).",
    )
    address: Name | None = Field(
        None,
        description="A text field holding an email address, e.g. the authority's focal point.",
    )
    body: str | None = Field(
        None,
        max_length=200,
        description="For an address: the body it belongs to, matched against a do-no-harm "
        "decision's recipient.",
    )
    consent_uses: list[Name] = Field(
        default_factory=list,
        description="For an address: the consent uses that cover sending personal data to it.",
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if sum(x is not None for x in (self.role, self.assignees, self.address)) != 1:
            raise ValueError("give exactly one of 'role', 'assignees', 'address'")
        if self.address is None and (self.body is not None or self.consent_uses):
            raise ValueError(
                "'body' and 'consent_uses' are for addresses; the recipients directory says "
                "them for people"
            )
        return self


def _recipient_kind(value: object) -> str:
    return "role" if isinstance(value, str) else "recipient"


# Tagged, so a bad entry reports what is wrong with it rather than "should be a valid string"
Recipient = Annotated[
    Annotated[Name, Tag("role")] | Annotated[RecipientSpec, Tag("recipient")],
    Discriminator(_recipient_kind),
]


class NotificationSpec(_Model):
    """Who hears of an event, and with which template (sent by the notifications layer)."""

    on: NotifyOn
    to: list[Recipient] = Field(
        min_length=1,
        description="Recipients: role names, or {role|assignees|address: ...} entries.",
    )
    template: Name

    @property
    def recipients(self) -> tuple[RecipientSpec, ...]:
        """``to`` with plain role names spelled out."""
        return tuple(RecipientSpec(role=r) if isinstance(r, str) else r for r in self.to)


class OnDue(_Model):
    """What happens when a deadline falls due (besides notifications declared on it)."""

    trigger: Name | None = Field(
        None,
        description="Trigger the scheduler fires (actor and role 'scheduler'): an escalation. "
        "Its transition must allow the role 'scheduler'.",
    )
    notify: Name | None = Field(
        None,
        description="Removed: it was never sent. 'validate' refuses it in a file and names "
        "the replacement, 'overdue_alerts'; a copy stored before keeps running without it.",
    )


class MetBy(_Model):
    """What meets an obligation: exactly one of a trigger applied, or a field becoming set."""

    trigger: Name | None = Field(None, description="Applying this trigger meets it.")
    field: Name | None = Field(
        None,
        description="This field becoming set meets it (e.g. 'submitted_on'); a date or "
        "datetime field gives the day it was met.",
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.trigger is None) == (self.field is None):
            raise ValueError("give exactly one of 'trigger', 'field'")
        return self

    def __str__(self) -> str:
        return f"trigger:{self.trigger}" if self.trigger is not None else f"field:{self.field}"


class AlertStep(_Model):
    """One step of an obligation's overdue alerts: once ``after`` the due date, or ``every``
    period from the due date on, while the obligation stays overdue."""

    after: str | None = Field(
        None, description="Once, this long after the due date ('0 days': at the due date)."
    )
    every: str | None = Field(
        None, description="Repeatedly, every this long after the due date, until met."
    )
    to: list[Recipient] = Field(
        min_length=1,
        description="Roles (or {role|assignees|address} entries); the case's assignees "
        "(the workflow's 'assignees' field) replace the roles when it names anyone.",
    )
    template: Name = Field(description="The message template (one file per language).")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.after is None) == (self.every is None):
            raise ValueError("give exactly one of 'after', 'every'")
        if self.after is not None:
            parse_offset(self.after)
        if self.every is not None:
            parse_period(self.every)
        return self

    @property
    def recipients(self) -> tuple[RecipientSpec, ...]:
        return tuple(RecipientSpec(role=r) if isinstance(r, str) else r for r in self.to)


class DeadlineSpec(_Model):
    """A deadline declared on a state: armed on entry, cancelled on exit.

    Periods are ``<n> <unit>`` (hours, days, working days, weeks, months, years) or
    ``config:<key>``, a duration the NPM sets in its settings file. Periods of a day or more
    fall due at the end of their last day in the NPM's time zone; working days skip its
    weekend and public holidays (docs/deadlines.md).
    """

    id: Name
    due: str = Field(
        "",
        description="'<period> [before|after <anchor>]', e.g. '10 working days', "
        "'config:visit.factual_check', '7 months before session_start'. The anchor is "
        "'entered' (default: when the state was entered) or a date/datetime field.",
    )
    not_before: str | None = Field(
        None,
        description="A minimum instead of a due date: what meets it ('met_by') may not "
        "happen before '<period> after <anchor>', e.g. '48 hours after review_held_on'. "
        "Never overdue, never alerted.",
    )
    on_early: Literal["warn", "refuse"] | None = Field(
        None,
        description="With 'not_before': 'warn' (the default: the fact is recorded, with a "
        "notice and an audited 'early' record) or 'refuse' (the change is refused).",
    )
    label: str | None = None
    reminders: list[str] = Field(
        default_factory=list,
        description="Periods before the due date, e.g. ['7 days', '1 working day']; each "
        "fires once.",
    )
    every: str | None = Field(
        None,
        description="Repeat this often while in the state, counted from the previous due "
        "date (occurrences missed during downtime fire once).",
    )
    published: Name | None = Field(
        None,
        description="A date/datetime field holding a date published by the body concerned "
        "(e.g. an OHCHR deadline): when set, it replaces the computed due date.",
    )
    when: str | None = Field(
        None,
        description="Sandboxed expression over the instance data: the deadline is armed only "
        "when it holds, e.g. \"session_season == 'oct_nov'\". A field it reads that changes "
        "re-arms or cancels the deadline, like a changed anchor.",
    )
    on_due: OnDue = Field(default_factory=OnDue)
    scope: list[Name] | Literal["instance"] | None = Field(
        None,
        description="Workflow-level deadlines only: the states it spans (entering the first "
        "of them starts it, leaving them all ends it; re-entering starts a new occurrence), "
        "or 'instance' (from the start to a final state). A deadline under a state spans "
        "that state.",
    )
    met_by: list[MetBy] = Field(
        default_factory=list,
        description="What meets it: {trigger: name} or {field: name} entries. Without it, "
        "leaving the scope meets it.",
    )
    owed_by: Literal["npm", "state", "un_body"] | None = Field(
        None, description="Who owes it: the NPM, the State, or a UN body."
    )
    kind: Literal["obligation", "milestone"] = Field(
        "obligation",
        description="'milestone': a date to show (e.g. documents made public), never overdue "
        "and never alerting.",
    )
    overdue_alerts: list[AlertStep] = Field(
        default_factory=list,
        description="Messages the scheduler sends while it is overdue (until met, waived or "
        "extended): [{after: 0 days, to: [...], template: ...}, {every: 30 days, ...}].",
    )
    waivable_by: list[Name] = Field(
        default_factory=list, description="Roles that may waive it (with a reason)."
    )
    extendable_by: list[Name] = Field(
        default_factory=list,
        description="Roles that may grant a new last day (with a reason).",
    )

    @field_validator("met_by", mode="before")
    @classmethod
    def _met_by(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value

    @field_validator("due")
    @classmethod
    def _due(cls, value: str) -> str:
        if value:
            parse_due(value)
        return value

    @field_validator("not_before")
    @classmethod
    def _not_before(cls, value: str | None) -> str | None:
        if value is not None:
            parse_due(value)
        return value

    @model_validator(mode="after")
    def _due_or_minimum(self) -> Self:
        if bool(self.due) == (self.not_before is not None):
            raise ValueError(
                "give exactly one of 'due' (a date by which it is owed) and 'not_before' "
                "(a minimum: the earliest it may be met)"
            )
        if self.on_early is not None and self.not_before is None:
            raise ValueError("'on_early' is for a 'not_before' minimum")
        return self

    @property
    def minimum(self) -> bool:
        """A ``not_before`` minimum: checked when it is met, never stored as owed."""
        return self.not_before is not None

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_period(item)
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_period(value)
        return value


class StateSpec(_Model):
    label: str | None = None
    description: str | None = None
    initial: bool = False
    final: bool = False
    on_enter: list[Name] = Field(default_factory=list, description="Registered actions.")
    deadlines: list[DeadlineSpec] = Field(default_factory=list)


class OpenSpec(_Model):
    """A child instance the transition opens, in the same transaction (links kept both ways)."""

    workflow: Name = Field(description="Workflow id of the child (its latest version).")
    role: Name | None = Field(
        None, description="Role the child is started under; default: the firing role."
    )
    data: dict[Name, str] = Field(
        default_factory=dict,
        description="Child field -> sandboxed expression over this instance's data "
        "(and `item` with for_each).",
    )
    for_each: Name | None = Field(None, description="Open one child per item of this list field.")
    reason: str | None = Field(None, description="Why, for the audit trail of both instances.")
    writes: list[Name] | None = Field(
        None,
        description="Child fields this opening may write beyond the child's own start write "
        "set (e.g. a link a person starting the child may not set). Every key of 'data' must "
        "be in the child's start write set or here; every name here must be a key of 'data'.",
    )


class SharesSpec(_Model):
    """Personal data this transition sends out of the NPM (docs/consent.md)."""

    use: Name = Field(
        description="What the data is used for: one of the uses of the workflow's 'persons' "
        "consents (refer, share_with_management, escalate, report_to_authority, publish)."
    )
    recipient: Name | None = Field(
        None,
        description="A field holding the id of the receiving body (the authority register). "
        "Required, except for publish and share_with_management, which rest on consent only.",
    )
    fields: list[Name] = Field(
        min_length=1,
        description="The fields sent; the transition is refused unless consent or a "
        "do-no-harm decision covers each personal one holding data.",
    )


class TransitionSpec(_Model):
    trigger: Name
    source: Name | Literal["*"] | list[Name] = Field(
        description="One state, a list of states, or '*' for every non-final state."
    )
    dest: Name | None = Field(
        None, description="Target state; omit for an internal transition (data only)."
    )
    label: str | None = None
    roles: list[Name] = Field(min_length=1, description="Roles allowed to fire it.")
    guards: list[Name] = Field(default_factory=list, description="Registered guard names.")
    when: str | None = Field(None, description="Sandboxed expression over the instance data.")
    requires: list[Name] = Field(
        default_factory=list, description="Fields that must be present or supplied."
    )
    writes: list[Name] | None = Field(
        None,
        description="Fields a caller firing it may set or clear, besides its 'requires' "
        "(implied). Omitted: only its 'requires'. Other supplied fields are refused (kind "
        "'data'). Its actions' declared writes must be within 'writes' and 'requires'.",
    )
    differs: str | None = Field(
        None,
        max_length=200,
        description="Why this alternative of a (trigger, source) pair has different "
        "'requires' or 'writes' from the others; without it they must be identical "
        "(different roles alone never tell alternatives apart).",
    )
    actions: list[Name] = Field(default_factory=list, description="Registered actions.")
    shares: SharesSpec | None = Field(
        None,
        description="Personal data the transition shares with a body: checked against the "
        "persons' consents and the do-no-harm decisions when it fires.",
    )
    opens: list[OpenSpec] = Field(default_factory=list, description="Child instances to open.")
    pauses: list[Name] = Field(
        default_factory=list,
        description="Deadlines of the state whose clock stops (e.g. waiting on another "
        "party); the remaining time is kept.",
    )
    resumes: list[Name] = Field(
        default_factory=list,
        description="Paused deadlines whose clock starts again with the time that remained.",
    )

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)


class StartSpec(_Model):
    roles: list[Name] | None = Field(None, description="Roles allowed to start; default all.")
    requires: list[Name] = Field(default_factory=list)
    writes: list[Name] | None = Field(
        None,
        description="Fields a caller starting an instance may supply, besides 'requires' and "
        "fields with 'required: true' (both implied). Omitted: only those. Other supplied "
        "fields are refused (kind 'data').",
    )


class OwnerSpec(_Model):
    """Instances that belong to one person (an expert's own record, say)."""

    field: Name = Field(description="The field holding the owner's actor id.")
    roles: list[Name] = Field(
        min_length=1,
        description="Roles that may act on an instance only when their actor equals the "
        "owner field. The owner field is writable only by roles not listed here.",
    )


class RegisterSpec(_Model):
    """This workflow is a register: its instances are entries other workflows refer to by id
    (``type: ref``). docs/registers.md says what a register must declare."""

    title_field: Name = Field(
        description="The field that names an entry wherever it is shown (a required string "
        "field that is not personal), e.g. 'name'."
    )


class WorkflowDefinition(_Model):
    """One workflow definition file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    id: Name
    version: int = Field(ge=1)
    title: str
    description: str | None = None
    roles: dict[Name, str] = Field(min_length=1, description="Role name -> what it is.")
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)
    personal_visible_to: list[Name] = Field(
        default_factory=list,
        description="Roles that may read personal field values through the HTTP API (a field's "
        "own 'visible_to' overrides this); every other role sees them redacted. Default: none.",
    )
    owner: OwnerSpec | None = Field(
        None, description="Who owns an instance, and which roles act only on their own."
    )
    summary_field: Name | None = Field(
        None,
        description="A field whose value lists, deadlines and calendar events show beside a "
        "case's id (a reference number, a case title): a string, text, integer, enum or date "
        "field that is not personal, since calendars sync to services outside the NPM.",
    )
    subject: Name | None = Field(
        None,
        description="The personal field holding the id of the person a case concerns (a "
        "name, a file number): indexed by a keyed hash, so `subject export` and `subject "
        "erase` find every case of one person without opening any value.",
    )
    retention: str | None = Field(
        None,
        description="How long a case is kept once it reached a final state, e.g. '5 years "
        "after closed': then the scheduler erases it (unless under a legal hold).",
    )
    erasable_by: list[Name] = Field(
        default_factory=list,
        description="Roles that may erase a case besides 'admin' (the operator).",
    )
    start: StartSpec = Field(default_factory=StartSpec)
    states: dict[Name, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(min_length=1)
    notifications: list[NotificationSpec] = Field(default_factory=list)
    deadlines: list[DeadlineSpec] = Field(
        default_factory=list,
        description="Deadlines spanning several states or the whole instance ('scope').",
    )
    assignees: Name | None = Field(
        None,
        description="A text (or list of text) field of directory ids: the people assigned "
        "to a case, who receive its overdue alerts instead of the roles an alert names.",
    )
    # "register" is an attribute of every pydantic model (abc's), hence the alias
    as_register: RegisterSpec | None = Field(
        None,
        alias="register",
        description="Declares this workflow a register (places, authorities, themes, "
        "people): other workflows' 'ref' fields hold the ids of its entries.",
    )
