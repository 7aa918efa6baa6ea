"""Merging a duplicate into another instance of its workflow (a transition's ``merge:``,
docs/definitions.md, "Merging duplicates").

One unit of work writes both: the duplicate's transition (to ``merged``, say, with the
survivor's id in ``into``), then the survivor's trigger with what the duplicate hands over
(its id appended to ``link``, the entries of the ``copies`` records). Each gets its own audit
record on its own chain. Both rows are locked first, in the order of their ids, so two merges
of one pair (either way round) never wait on each other. A refusal on either side undoes
both: the duplicate's change is rolled back to a savepoint, and the refusal is audited on
both chains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.definition import FieldType, MergeSpec
from opcatflow.engine.errors import InstanceNotFound, TransitionRefused
from opcatflow.engine.firing import Refused
from opcatflow.engine.instance import Instance
from opcatflow.engine.results import FireResult

if TYPE_CHECKING:
    from datetime import datetime

    from opcatflow.engine.compiled import CompiledWorkflow
    from opcatflow.engine.writes import Writes


class Engine(Protocol):
    """What a merge needs of the engine (``opcatflow.engine.runtime.Engine``)."""

    _writes: Writes

    def workflow(self, workflow: str, version: int | None = None) -> CompiledWorkflow: ...

    def lock_for_record(
        self, uow: SealedUnitOfWork, instance_id: str
    ) -> tuple[Instance, datetime]: ...

    def _fire_in(
        self,
        uow: SealedUnitOfWork,
        instance_id: str,
        trigger: str,
        *,
        actor: str,
        roles: Sequence[str],
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        merging: bool = False,
    ) -> FireResult: ...


class _Undo(Exception):
    """Raised inside the savepoint to roll the duplicate's change back."""

    def __init__(self, refusal: TransitionRefused) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def handed_over(
    merge: MergeSpec, wf: CompiledWorkflow, duplicate: Instance, survivor: Instance
) -> dict[str, Any]:
    """The data the survivor's trigger receives: the duplicate's id appended to ``link``,
    and each ``copies`` field's entries appended (an integer key left for the survivor to
    number, so the entries never collide with its own)."""
    data: dict[str, Any] = {}
    if merge.link is not None:
        data[merge.link] = [*(survivor.data.get(merge.link) or []), duplicate.id]
    fields = wf.definition.fields
    for name in merge.copies:
        entries = [e for e in duplicate.data.get(name) or [] if isinstance(e, Mapping)]
        if not entries:
            continue
        key = fields[name].key
        item = fields[name].item or {}
        renumber = key is not None and key in item and item[key].type is FieldType.INTEGER
        data[name] = {
            "append": [{k: v for k, v in e.items() if not (renumber and k == key)} for e in entries]
        }
    return data


def pair_problem(
    merge: MergeSpec,
    duplicate: Instance,
    survivor_id: str,
    find: Callable[[str], Instance | None],
    workflow: Callable[[Instance], CompiledWorkflow],
) -> str | None:
    """Why ``duplicate`` may not merge into ``survivor_id`` whatever the transitions say."""
    if survivor_id == duplicate.id:
        return f"{merge.into}: a case cannot be merged into itself"
    survivor = find(survivor_id)
    if survivor is None:
        return f"{merge.into}: no instance {survivor_id!r}"
    if survivor.workflow_id != duplicate.workflow_id:
        return (
            f"{merge.into}: {survivor_id} is a {survivor.workflow_id} instance; a "
            f"{duplicate.workflow_id} merges only into another {duplicate.workflow_id}"
        )
    if survivor.state in workflow(survivor).finals:
        return f"{merge.into}: {survivor_id} is {survivor.state}: a finished case takes nothing in"
    return None


def merge_in(
    engine: Engine,
    uow: SealedUnitOfWork,
    merge: MergeSpec,
    duplicate_id: str,
    trigger: str,
    *,
    actor: str,
    roles: Sequence[str],
    data: Mapping[str, Any],
    reason: str | None,
    expected_version: int | None,
) -> FireResult:
    """Fire the merge ``trigger`` on the duplicate and ``merge.trigger`` on the survivor,
    in ``uow``, both or neither."""
    survivor_id = data.get(merge.into)
    if not isinstance(survivor_id, str) or not survivor_id:
        # nothing to merge into: the duplicate's transition refuses it (its requires)
        return engine._fire_in(
            uow, duplicate_id, trigger, actor=actor, roles=roles, data=data, reason=reason,
            expected_version=expected_version,
        )  # fmt: skip
    for each in sorted({duplicate_id, survivor_id}):  # a fixed order: no deadlock
        try:
            uow.instances.lock_for_append(each)
        except InstanceNotFound:
            if each == duplicate_id:
                raise

    def find(instance_id: str) -> Instance | None:
        try:
            return uow.instances.get(instance_id)
        except InstanceNotFound:
            return None

    def workflow(instance: Instance) -> CompiledWorkflow:
        return engine.workflow(instance.workflow_id, instance.workflow_version)

    current, now = engine.lock_for_record(uow, duplicate_id)
    problem = pair_problem(merge, current, survivor_id, find, workflow)
    if problem is not None:
        role = roles[0]
        engine._writes.store_refusal(
            uow, current, trigger=trigger, actor=actor, role=role, now=now,
            refusal=Refused("data", problem),
        )  # fmt: skip
        error = TransitionRefused(duplicate_id, trigger, "data", problem)
        return FireResult(current, None, error, trigger, actor, role, ())
    try:
        with uow.savepoint():
            first = engine._fire_in(
                uow, duplicate_id, trigger, actor=actor, roles=roles, data=data, reason=reason,
                expected_version=expected_version,
            )  # fmt: skip
            if first.refusal is not None or first.instance is None:
                return first  # refused on the duplicate's side: stored, nothing else done
            survivor = uow.instances.get(survivor_id)
            given = handed_over(merge, workflow(survivor), first.instance, survivor)
            second = engine._fire_in(
                uow, survivor_id, merge.trigger, actor=actor, roles=(first.role,), data=given,
                reason=reason, merging=True,
            )  # fmt: skip
            if second.refusal is not None:
                raise _Undo(second.refusal)
    except _Undo as undo:
        return _refused_both(
            engine, uow, merge, duplicate_id=duplicate_id, survivor_id=survivor_id,
            trigger=trigger, actor=actor, role=first.role, refusal=undo.refusal,
        )  # fmt: skip
    return first


def _refused_both(
    engine: Engine,
    uow: SealedUnitOfWork,
    merge: MergeSpec,
    *,
    duplicate_id: str,
    survivor_id: str,
    trigger: str,
    actor: str,
    role: str,
    refusal: TransitionRefused,
) -> FireResult:
    """Audit a merge the survivor refused on both chains (read again: the savepoint undid
    what the duplicate's transition wrote)."""
    survivor, at = engine.lock_for_record(uow, survivor_id)
    engine._writes.store_refusal(
        uow, survivor, trigger=merge.trigger, actor=actor, role=role, now=at,
        refusal=Refused(refusal.kind, refusal.reason),
    )  # fmt: skip
    why = f"{merge.into}: {survivor_id} refused {merge.trigger} ({refusal.reason})"
    current, now = engine.lock_for_record(uow, duplicate_id)
    engine._writes.store_refusal(
        uow, current, trigger=trigger, actor=actor, role=role, now=now,
        refusal=Refused(refusal.kind, why),
    )  # fmt: skip
    error = TransitionRefused(duplicate_id, trigger, refusal.kind, why)
    return FireResult(current, None, error, trigger, actor, role, ())
