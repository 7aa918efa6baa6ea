"""Many cases entered at once (an import), all or nothing, through the engine's own writes.

Each planned case is a start followed by triggers, as a person entering it would fire them:
the start write set, the transitions' roles, write sets, field rules, guards, actions,
register references and deadlines all apply, and every step is audited. The whole batch
runs in one unit of work (so one commit, not one per step: hundreds of cases take seconds),
each case in a savepoint of its own, so that a case that fails is rolled back alone and the
next ones are still tried: every failure of every case is found in one run. If any case
failed, nothing is stored at all (:class:`BatchFailed` lists them, by the line each case
came from).

Times: every record carries the time of the batch; the dates a case holds (sent on, replied
on, assessed on) are its data, and its deadlines count from them, so an obligation already
past when the case is entered is stored as overdue (the notices say so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opcatflow.engine.errors import (
    InvalidData,
    InvalidText,
    LimitExceeded,
    NotFound,
    OpcatflowError,
    TransitionRefused,
)
from opcatflow.engine.inputs import check_call, check_data
from opcatflow.engine.rows import ObligationStatus
from opcatflow.engine.writes import start_data, start_refusal

if TYPE_CHECKING:
    from opcatflow.engine.crypto.store import SealedUnitOfWork
    from opcatflow.engine.runtime import Engine


@dataclass(frozen=True, slots=True)
class CaseRef:
    """A step's value that is the id of another case of the batch, by its key (a row that
    repeats an earlier row of the same file)."""

    key: str


@dataclass(frozen=True, slots=True)
class Step:
    """A trigger a case fires, with its data; ``label`` names the step in a failure when the
    trigger alone would not say which (the third of a row's assessments)."""

    trigger: str
    data: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.trigger if self.label is None else f"{self.trigger} ({self.label})"


@dataclass(frozen=True)
class PlannedCase:
    """One case to enter: where it comes from (``line``), its start data, its steps in
    order, and an optional ``key`` later cases may refer to (:class:`CaseRef`)."""

    line: int
    workflow: str
    data: Mapping[str, Any]
    steps: Sequence[Step] = ()
    key: str | None = None


@dataclass(frozen=True, slots=True)
class CaseFailure:
    line: int
    step: str  # ``start`` or the trigger that failed
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.step}: {self.message}"


class BatchFailed(OpcatflowError):
    """At least one case failed: nothing of the batch is stored."""

    def __init__(self, failures: list[CaseFailure]) -> None:
        self.failures = failures
        super().__init__("; ".join(str(f) for f in failures))


@dataclass(frozen=True, slots=True)
class Entered:
    """A case entered: its state, what the engine told (notices), and the deadlines it owes
    that were already overdue once it was entered (their names)."""

    line: int
    instance_id: str
    state: str
    notices: tuple[str, ...]
    overdue: tuple[str, ...] = ()


def enter_cases(
    engine: Engine,
    cases: Sequence[PlannedCase],
    *,
    actor: str,
    role: str,
    reason: str | None = None,
) -> list[Entered]:
    """Enter every case in one unit of work, or none. The cases are checked first
    (:func:`check_cases`): any problem there and the database is not touched.

    Raises:
        BatchFailed: every case that failed, by line (nothing is stored).
        StoreError: the store failed.
        LimitExceeded, InvalidText: the actor, role or reason past a limit (nothing is stored).
    """
    check_call(actor=actor, role=role, reason=reason)
    failures = check_cases(engine, cases, role=role)
    if failures:
        raise BatchFailed(failures)

    def work(uow: SealedUnitOfWork) -> list[Entered]:
        entered: list[Entered] = []
        failures: list[CaseFailure] = []
        ids: dict[str, str] = {}
        for case in cases:
            try:
                with uow.savepoint():
                    done = _enter(engine, uow, case, ids, actor=actor, role=role, reason=reason)
            except _StepFailed as failed:
                failures.append(CaseFailure(case.line, failed.step, failed.message))
                continue
            entered.append(done)
            if case.key is not None:
                ids[case.key] = done.instance_id
        if failures:
            raise BatchFailed(failures)
        return entered

    return engine.store.submit(work)


def check_cases(engine: Engine, cases: Sequence[PlannedCase], *, role: str) -> list[CaseFailure]:
    """What can be found wrong with the cases before the database is touched: each value
    against its field (types, enum values, dates, records), the start's required fields and
    write set. Every case is checked, every problem kept."""
    failures: list[CaseFailure] = []
    for case in cases:
        try:
            wf = engine.workflow(case.workflow)
        except NotFound as err:
            failures.append(CaseFailure(case.line, "start", str(err)))
            continue
        start = {k: v for k, v in case.data.items() if not isinstance(v, CaseRef)}
        try:
            clean, errors = start_data(wf, start)
        except LimitExceeded as err:
            clean, errors = {}, [str(err)]
        refusal = None if errors else start_refusal(wf, role, clean)
        errors += [refusal] if refusal is not None else []
        failures += [CaseFailure(case.line, "start", e) for e in errors]
        for step in case.steps:
            data = {k: v for k, v in step.data.items() if not isinstance(v, CaseRef)}
            _, errors = wf.schema.validate(data)
            failures += [CaseFailure(case.line, step.name, e) for e in errors]
    return failures


class _StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        self.step = step
        self.message = message


def _enter(
    engine: Engine,
    uow: SealedUnitOfWork,
    case: PlannedCase,
    ids: Mapping[str, str],
    *,
    actor: str,
    role: str,
    reason: str | None,
) -> Entered:
    try:
        data = _resolved(case.data, ids)
        check_data(data)
        started = engine._start(
            case.workflow,
            actor=actor,
            role=role,
            data=data,
            parent_id=None,
            reason=reason,
            version=None,
            also=None,
            instance_id=None,
            within=uow,
        )
    except _CASE_ERRORS as err:
        raise _StepFailed("start", _words(err)) from err
    instance = started.instance
    notices = list(started.notices)
    for step in case.steps:
        try:
            data = _resolved(step.data, ids)
            check_data(data)
            result = engine._fire_in(
                uow, instance.id, step.trigger, actor=actor, roles=(role,), data=data,
                reason=reason,
            )  # fmt: skip
        except _CASE_ERRORS as err:
            raise _StepFailed(step.name, _words(err)) from err
        if result.refusal is not None:
            raise _StepFailed(step.name, result.refusal.reason)
        assert result.instance is not None
        instance = result.instance
        notices += result.notices
    rows = uow.obligations.of_instance(instance.id)
    overdue = tuple(sorted(r.deadline for r in rows if r.status is ObligationStatus.DUE))
    return Entered(case.line, instance.id, instance.state, tuple(notices), overdue)


class _UnknownKey(OpcatflowError):
    pass


# What makes one case fail (a store failure ends the batch instead).
_CASE_ERRORS = (TransitionRefused, InvalidData, NotFound, LimitExceeded, InvalidText, _UnknownKey)


def _resolved(data: Mapping[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    resolved = {}
    for name, value in data.items():
        if isinstance(value, CaseRef) and value.key not in ids:
            raise _UnknownKey(f"{name}: no earlier row has the key {value.key!r}")
        resolved[name] = ids[value.key] if isinstance(value, CaseRef) else value
    return resolved


def _words(err: OpcatflowError) -> str:
    if isinstance(err, TransitionRefused):
        return err.reason
    if isinstance(err, InvalidData):
        return "; ".join(err.errors)
    return str(err)


__all__ = [
    "BatchFailed",
    "CaseFailure",
    "CaseRef",
    "Entered",
    "PlannedCase",
    "Step",
    "enter_cases",
]
