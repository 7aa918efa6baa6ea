"""Deadlines (for the caller's roles), and for ``admin`` keys: outbox status, audit
verification and export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from opcatflow.adapters.http.auth import Caller, caller, require_admin
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import ApiProblem, responses
from opcatflow.adapters.http.reads import ReadReason, log_reads
from opcatflow.adapters.http.schemas import DeadlineOut, OutboxOut, VerifyOut
from opcatflow.engine.agenda import AgendaEntry, agenda
from opcatflow.engine.audit import VerifyJson
from opcatflow.engine.readlog import AUDIT_EXPORT_FIELDS
from opcatflow.notifications.model import DEAD, FAILED, PENDING, STATUSES, OutboxStatus

router = APIRouter(tags=["operations"])

NDJSON = "application/x-ndjson"


@router.get("/deadlines", response_model=list[DeadlineOut], responses=responses())
def list_deadlines(
    *,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    workflow: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=64)] = None,
    within_days: Annotated[
        int | None, Query(ge=0, le=3660, description="Only those due within this many days.")
    ] = None,
    overdue: Annotated[bool, Query(description="Only those already due.")] = False,
    reminders: Annotated[bool, Query(description="List reminders too.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Open obligations, soonest first: those the key's roles can act on or are told of
    (every one for ``admin``). An overdue one stays listed until it is met, waived or
    extended, or the case closes."""
    engine = ctx.engine
    options: dict[str, Any] = {
        "now": engine.clock.now(),
        "workflow": workflow,
        "state": state,
        "within": timedelta(days=within_days) if within_days is not None else None,
        "overdue_only": overdue,
        "reminders": reminders,
        "limit": limit,
    }
    if who.admin:
        entries = agenda(engine, **options)
    else:
        found: dict[tuple[int, str, datetime], AgendaEntry] = {}
        for role in who.roles:
            for entry in agenda(engine, role=role, **options):
                found[(entry.obligation_id, entry.kind, entry.fires_at)] = entry
        entries = sorted(
            found.values(), key=lambda e: (e.due_at, e.obligation_id, e.kind != "due")
        )[:limit]
    return [e.as_json() for e in entries]


@router.get("/outbox", response_model=OutboxOut, responses=responses("forbidden"))
def outbox_status(
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(require_admin)],
    status: Annotated[
        list[str] | None,
        Query(
            description=f"Only these statuses ({', '.join(STATUSES)}); default: "
            "pending, failed, dead."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=2**62, description="Messages after this id.")] = 0,
) -> dict[str, Any]:
    """Counts of outbox messages by status, and the messages themselves (without content:
    it may hold personal data)."""
    wanted = status or [PENDING, FAILED, DEAD]
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ApiProblem(
            "invalid-request", f"unknown status {unknown[0]!r} (use {', '.join(STATUSES)})"
        )
    with ctx.engine.store.read() as uow:
        messages = uow.outbox.listing([OutboxStatus(s) for s in wanted], limit=limit, after=after)
        counts = uow.outbox.counts()
    return {
        "counts": {s: counts.get(s, 0) for s in STATUSES},
        "messages": [m.as_json() for m in messages],
    }


@router.get("/audit/verify", response_model=VerifyOut, responses=responses("forbidden"))
def verify_audit(
    ctx: Annotated[Api, Depends(api)], who: Annotated[Caller, Depends(require_admin)]
) -> VerifyJson:
    """Recompute every hash chain of the audit trail; ``first_break`` names the first
    broken record; ``warnings`` name records of older data stamped earlier than the record
    before them."""
    return ctx.engine.verify_audit().as_json()


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One audit record per line (personal values as keyed hashes).",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **responses("forbidden"),
    },
)
def export_audit(
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(require_admin)],
    instance_id: Annotated[str | None, Query(max_length=36)] = None,
    reason: ReadReason = None,
) -> StreamingResponse:
    """The audit trail as JSON Lines, streamed (one instance's with ``instance_id``); the
    export is logged in the read log."""
    store = ctx.engine.store
    log_reads(ctx, who, "audit-export", [(instance_id, AUDIT_EXPORT_FIELDS)], reason)

    def lines() -> Iterator[str]:
        with store.read() as uow:
            for record in uow.audit.records(instance_id):
                yield json.dumps(record.as_json(), ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type=NDJSON)
