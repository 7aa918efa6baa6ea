"""Erasure and subject access over HTTP (docs/privacy.md), as the command line does them.

- ``POST /instances/{id}/erasure``: erase one case (crypto-shredding). The role is the one
  asked for (it must be the key's), else ``admin`` if the key has it, else the first of the
  key's roles the workflow names in ``erasable_by:``; the engine refuses any other (403).
- ``POST /subjects/erasure`` and ``POST /subjects/export``: every case concerning a person,
  erased, or exported decrypted (logged in the read log, one entry per case, with the
  ``Read-Reason`` header). An ``admin`` key only, as the command line's default role.

The subject travels in the body, never in the URL: a URL is written to access logs and
proxies' logs, and a subject id (a name, a file number) is personal data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from opcatflow.adapters.http.auth import Caller, caller, pick_role, require_admin
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import ApiProblem, responses
from opcatflow.adapters.http.reads import ReadReason
from opcatflow.engine.erasure import ERASER_ROLES, erase, erase_subject
from opcatflow.engine.subject_access import export_subject

router = APIRouter(tags=["privacy"])
_TEXT = 2000


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1, max_length=_TEXT, description="Why (kept in clear: never name the person)."
    )
    legal_basis: str = Field(
        min_length=1, max_length=_TEXT, description="The law or decision it rests on (in clear)."
    )
    role: str | None = Field(default=None, description="The key's role to erase in.")


class SubjectErasureIn(ErasureIn):
    subject: str = Field(min_length=1, max_length=_TEXT, description="The person's id.")


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=_TEXT, description="The person's id.")


class ErasureOut(BaseModel):
    instance_id: str
    workflow: str
    erased_at: str
    fields: list[str]
    messages: int
    cancelled_obligations: int
    children: list[str]


class ErasuresOut(BaseModel):
    erased: list[ErasureOut]


@router.post(
    "/instances/{instance_id}/erasure",
    response_model=ErasureOut,
    responses=responses("forbidden", "not-found", "refused", "limit-exceeded", "invalid-text"),
)
async def erase_instance(
    instance_id: str,
    body: ErasureIn,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
) -> dict[str, Any]:
    """Erase one case by crypto-shredding: its keys destroyed, its personal values read as
    ``[erased]``, its unsent messages dropped, an ``erased`` audit record. Erasing twice is
    refused (409, ``kind: erased``)."""
    engine = ctx.engine

    def run() -> dict[str, Any]:
        found = engine.get(instance_id)
        wf = engine.workflow(found.workflow_id, found.workflow_version)
        if not who.may_read(wf):
            raise ApiProblem("not-found", f"no instance {instance_id}")
        allowed = [r for r in who.roles if r in ERASER_ROLES | set(wf.definition.erasable_by)]
        role = pick_role(who, body.role, allowed)
        done = erase(
            engine, instance_id, actor=who.actor, role=role, reason=body.reason,
            legal_basis=body.legal_basis,
        )  # fmt: skip
        return done.as_json()

    return await ctx.blocking(run)


@router.post(
    "/subjects/erasure",
    response_model=ErasuresOut,
    responses=responses("forbidden", "refused", "limit-exceeded", "invalid-text"),
)
async def erase_subject_cases(
    body: SubjectErasureIn,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(require_admin)],
) -> dict[str, Any]:
    """Erase every case whose subject field holds this person (found by its blind index),
    each in its own transaction with its own audit record."""
    role = pick_role(who, body.role, ["admin"])

    def run() -> dict[str, Any]:
        done = erase_subject(
            ctx.engine, body.subject, actor=who.actor, role=role, reason=body.reason,
            legal_basis=body.legal_basis,
        )  # fmt: skip
        return {"erased": [e.as_json() for e in done]}

    return await ctx.blocking(run)


@router.post("/subjects/export", responses=responses("forbidden", "limit-exceeded"))
async def export_subject_cases(
    body: SubjectIn,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(require_admin)],
    reason: ReadReason = None,
) -> dict[str, Any]:
    """Everything held about one person (subject access), decrypted: each case, its audit
    trail and the cases it opened. Each case exported is a read in the read log."""

    def run() -> dict[str, Any]:
        return export_subject(
            ctx.engine, body.subject, actor=who.actor, role="admin", channel="http",
            reason=reason,
        )  # fmt: skip

    return await ctx.blocking(run)
