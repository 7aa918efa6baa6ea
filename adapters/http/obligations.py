"""Waiving an obligation, or granting it a later last day: a person's decision, with a
reason, by a role the deadline names; the engine audits it, or audits its refusal."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from opcatflow.adapters.http.auth import Caller, caller, forbidden, pick_role
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import responses
from opcatflow.adapters.http.schemas import NAME, TEXT, ObligationOut, _In
from opcatflow.engine.limits import REASON

router = APIRouter(tags=["deadlines"])

DeadlineId = Annotated[str, Path(max_length=64, pattern=NAME)]
InstanceId = Annotated[str, Path(max_length=36)]


class WaiveIn(_In):
    reason: str = Field(
        min_length=1, max_length=REASON.maximum, pattern=TEXT, description="Why (audited)."
    )
    role: str | None = Field(
        None, max_length=64, pattern=NAME, description="Which of the key's roles decides."
    )
    occurrence: int | None = Field(None, ge=1, description="Default: the open occurrence.")


class ExtendIn(WaiveIn):
    last_day: date = Field(description="The new last day, in the NPM's calendar.")


def _role(
    ctx: Api, who: Caller, instance_id: str, deadline: str, *, key: str, wanted: str | None
) -> str:
    instance = ctx.engine.get(instance_id)
    wf = ctx.engine.workflow(instance.workflow_id, instance.workflow_version)
    if not who.may_read(wf):
        raise forbidden()
    declared = wf.deadlines.get(deadline)
    allowed: list[str] = list(getattr(declared.spec, key)) if declared is not None else []
    mine = who.roles_in(wf)
    return pick_role(who, wanted, [r for r in mine if r in allowed] + mine)


@router.post(
    "/instances/{instance_id}/deadlines/{deadline}/waive",
    response_model=ObligationOut,
    responses=responses("forbidden", "not-found", "refused", "limit-exceeded", "invalid-text"),
)
def waive(
    *,
    instance_id: InstanceId,
    deadline: DeadlineId,
    body: WaiveIn,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
) -> dict[str, Any]:
    """Waive the open occurrence of a deadline (a role of its ``waivable_by``): it is no
    longer owed, listed or alerted."""
    role = _role(ctx, who, instance_id, deadline, key="waivable_by", wanted=body.role)
    row = ctx.engine.waive(
        instance_id, deadline, actor=who.actor, role=role, reason=body.reason,
        occurrence=body.occurrence,
    )  # fmt: skip
    return row.as_json()


@router.post(
    "/instances/{instance_id}/deadlines/{deadline}/extend",
    response_model=ObligationOut,
    responses=responses("forbidden", "not-found", "refused", "limit-exceeded", "invalid-text"),
)
def extend(
    *,
    instance_id: InstanceId,
    deadline: DeadlineId,
    body: ExtendIn,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
) -> dict[str, Any]:
    """Grant the open occurrence of a deadline a later last day (a role of its
    ``extendable_by``): its alerts stop until the new day has passed."""
    role = _role(ctx, who, instance_id, deadline, key="extendable_by", wanted=body.role)
    row = ctx.engine.extend(
        instance_id, deadline, actor=who.actor, role=role, reason=body.reason,
        last_day=body.last_day, occurrence=body.occurrence,
    )  # fmt: skip
    return row.as_json()
