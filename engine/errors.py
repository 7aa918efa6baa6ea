"""The exception tree. Every error opcatflow raises on purpose is an ``OpcatflowError``.

Messages carry the ids a reader needs; the ids also stay attributes, so callers branch on
data, not on message text. The engine knows nothing of exit codes or HTTP problem types:
each adapter maps these classes to its own (``adapters/cli/errors.py``,
``adapters/http/problems.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from opcatflow.engine.limits import Limit

RefusalKind = Literal["trigger", "state", "role", "guard", "data", "action", "retired", "erased"]
"""Why a trigger was refused: no such trigger, not from this state, not this role, a guard
or condition, the data given, an action that failed, a start (or an ``opens:`` entry) on a
retired definition version, or a personal value written to an erased instance."""


class OpcatflowError(Exception):
    """Base class of every error opcatflow raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a workflow definition, located in its source file."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class DefinitionError(OpcatflowError):
    """A workflow definition is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TransitionRefused(OpcatflowError):
    """The engine refused a trigger (role, state, guard or data). The refusal is audited.

    Attributes:
        instance_id: the instance the trigger was aimed at.
        trigger: the trigger name as given.
        kind: one of ``trigger``, ``state``, ``role``, ``guard``, ``data``, ``action``.
        reason: a sentence an operator can act on.
    """

    def __init__(self, instance_id: str, trigger: str, kind: RefusalKind, reason: str) -> None:
        self.instance_id = instance_id
        self.trigger = trigger
        self.kind = kind
        self.reason = reason
        super().__init__(f"{trigger!r} refused on instance {instance_id}: {reason}")


class VersionRetired(TransitionRefused):
    """A start on a definition version that was retired (``workflows retire``): its running
    instances continue, new ones are refused, whichever route asks.

    Attributes:
        workflow, version: the retired version.
    """

    def __init__(self, workflow: str, version: int, newer: str = "") -> None:
        self.workflow = workflow
        self.version = version
        reason = f"{workflow} version {version} is retired: it starts no new instances{newer}"
        super().__init__("(new)", "start", "retired", reason)


class InstanceErased(TransitionRefused):
    """A write that would seal a value (a personal or confidential field, a reason, a
    notification) for an instance whose keys were erased: refused, nothing is stored. Its
    other fields, state and audit trail remain; no key is ever made for it again.

    Attributes:
        instance_id: the erased instance.
    """

    def __init__(self, instance_id: str, trigger: str = "(write)") -> None:
        super().__init__(
            instance_id,
            trigger,
            "erased",
            f"instance {instance_id} was erased: its personal values, reasons and messages "
            "can no longer be written, and it cannot be erased or held again",
        )


class InvalidData(OpcatflowError):
    """Data given to start an instance does not fit the workflow's schema (nothing is stored)."""

    def __init__(self, workflow: str, errors: Sequence[str]) -> None:
        self.workflow = workflow
        self.errors = tuple(errors)
        super().__init__(f"invalid data for {workflow}: " + "; ".join(self.errors))


class RowsRefused(OpcatflowError):
    """A batch of new instances (an import) refused as a whole: ``problems`` holds
    ``(row index, message)`` for every row that is wrong, in row order; nothing is stored."""

    def __init__(self, workflow: str, problems: Sequence[tuple[int, str]]) -> None:
        self.workflow = workflow
        self.problems = tuple(problems)
        first = "; ".join(f"row {i + 1}: {m}" for i, m in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"nothing added to {workflow}: {first}{more}")


class ConcurrentUpdate(OpcatflowError):
    """The instance changed since the caller read it; re-read and decide again."""

    def __init__(self, instance_id: str, expected: int, actual: int) -> None:
        self.instance_id = instance_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"instance {instance_id} is at version {actual}, not the expected {expected}"
        )


class NotFound(OpcatflowError):
    """Base of the errors for something that does not exist."""


class InstanceNotFound(NotFound):
    """No instance has this id."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"no instance {instance_id}")


class AmbiguousId(OpcatflowError):
    """An id prefix that more than one instance id starts with.

    Attributes:
        prefix: the prefix as given.
        candidates: the ids it matches, sorted (at most a few: see ``more``).
        more: whether other ids match too.
    """

    def __init__(self, prefix: str, candidates: Sequence[str], more: bool) -> None:
        self.prefix = prefix
        self.candidates = tuple(candidates)
        self.more = more
        listed = ", ".join(self.candidates) + (", ..." if more else "")
        super().__init__(
            f"{prefix!r} is the start of several instance ids ({listed}): give more of it"
        )


class IdTooShort(OpcatflowError):
    """An instance id prefix shorter than the least a prefix may be (so that a typed
    fragment cannot land on a case by chance).

    Attributes:
        prefix: the prefix as given.
        minimum: the least number of characters.
    """

    def __init__(self, prefix: str, minimum: int) -> None:
        self.prefix = prefix
        self.minimum = minimum
        super().__init__(
            f"{prefix!r} is too short for an instance id: give the full id or at least "
            f"its first {minimum} characters"
        )


class InvalidFilter(OpcatflowError):
    """A list filter naming something that does not exist (a state, role, workflow, field,
    enum value or parameter): refused rather than answered with an empty list, which would
    read as "nothing to do".

    Attributes:
        name: the filter (``state``, ``where``, ``role`` ...).
        value: the value given.
    """

    def __init__(self, name: str, value: str, message: str) -> None:
        self.name = name
        self.value = value
        super().__init__(message)


class WorkflowNotFound(NotFound):
    """No loaded workflow (or version of it) has this id."""

    def __init__(self, workflow: str, version: int | None = None, hint: str = "") -> None:
        self.workflow = workflow
        self.version = version
        what = workflow if version is None else f"{workflow} v{version}"
        super().__init__(f"no workflow {what}{hint}")


class SchemaMismatch(OpcatflowError):
    """The database schema is not the one this version of opcatflow expects."""

    def __init__(self, found: str | None, expected: str) -> None:
        self.found = found
        self.expected = expected
        super().__init__(
            f"database schema is at revision {found or 'none'}, this opcatflow needs {expected}; "
            "run `opcatflow db upgrade`"
        )


class StoreError(OpcatflowError):
    """The database failed in a way the engine cannot recover from (wraps the driver error)."""


class SchemaLocked(StoreError):
    """Another process or thread held the database's schema lock (creating or upgrading the
    schema) for longer than the store waits.

    Attributes:
        database: the database, as a URL without its password or a SQLite file path.
        timeout: the seconds waited.
    """

    def __init__(self, database: str, timeout: float) -> None:
        self.database = database
        self.timeout = timeout
        super().__init__(
            f"waited {timeout:g} s for the schema lock of {database}: another process is "
            "creating or upgrading its schema; try again once it has finished"
        )


class LimitExceeded(OpcatflowError):
    """An input goes past one of the limits of :mod:`opcatflow.engine.limits`; refused before
    any transaction, so nothing is stored (not even a refusal).

    Attributes:
        limit: the limit (its ``name`` is what messages say, e.g. ``reason``).
        where: what went past it: ``actor``, ``reason``, ``data.summary``, ``data.tags[3]``.
        size: how large the input was, in the limit's unit (``None`` when not measured:
            nesting is counted only up to the limit).
    """

    def __init__(self, limit: Limit, where: str, size: int | None = None) -> None:
        self.limit = limit
        self.where = where
        self.size = size
        found = f" ({size:,})" if size is not None else ""
        super().__init__(f"{where} is over the {limit.describe()}{found}")


class InvalidText(OpcatflowError):
    """Text that is not a sequence of Unicode scalar values (a lone surrogate such as
    ``"\\ud800"``, or bytes that were not UTF-8); refused before any transaction.

    Attributes:
        where: which input: ``actor``, ``reason``, ``data.summary``, ``data`` (a key).
        position: the index of the first offending character.
    """

    def __init__(self, where: str, position: int) -> None:
        self.where = where
        self.position = position
        super().__init__(
            f"{where} is not valid Unicode text (a lone surrogate or bytes that were not UTF-8 "
            f"at character {position})"
        )


class KeyUnavailable(OpcatflowError):
    """A key that personal values are sealed with cannot be used: the key-encryption key is
    missing (no key file, no environment variable) or is not the one that wrapped the data
    keys, or a wrapped key does not open. Nothing is read as garbage and nothing is written.

    Attributes:
        key_id: the key-encryption key's id (as stored next to every data key it wraps).
        problem: what is wrong with it.
        remedy: what an operator does about it.
    """

    def __init__(self, key_id: str, problem: str, remedy: str) -> None:
        self.key_id = key_id
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"key-encryption key {key_id}: {problem}; {remedy}")
