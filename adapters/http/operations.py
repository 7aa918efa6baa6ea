"""Deadlines (for the caller's roles), and for ``admin`` keys: outbox status, audit
verification and export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from opcatflow.adapters.http.auth import Caller, caller, forbidden, require_admin
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import ApiProblem, responses
from opcatflow.adapters.http.queries import known_query
from opcatflow.adapters.http.reads import ReadReason, log_reads
from opcatflow.adapters.http.schemas import DeadlinePage, OutboxOut, VerifyOut
from opcatflow.adapters.paging import BadCursor, decode_agenda_cursor, encode_agenda_cursor
from opcatflow.engine.agenda import agenda_page
from opcatflow.engine.audit import VerifyJson
from opcatflow.engine.filters import check_role, check_state, check_workflow
from opcatflow.engine.readlog import AUDIT_EXPORT_FIELDS
from opcatflow.notifications.model import DEAD, FAILED, PENDING, STATUSES, OutboxStatus

router = APIRouter(tags=["operations"])

NDJSON = "application/x-ndjson"


@router.get(
    "/deadlines",
    response_model=DeadlinePage,
    responses=responses("forbidden", "invalid-request"),
    dependencies=[Depends(known_query)],
)
def list_deadlines(
    *,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    workflow: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=64)] = None,
    role: Annotated[
        str | None, Query(max_length=64, description="Only those this role of the key's acts on.")
    ] = None,
    within_days: Annotated[
        int | None, Query(ge=0, le=3660, description="Only those due within this many days.")
    ] = None,
    overdue: Annotated[bool, Query(description="Only those already due.")] = False,
    reminders: Annotated[bool, Query(description="List reminders too.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="From next_cursor.")] = None,
) -> dict[str, Any]:
    """Open obligations, soonest first, a page at a time (follow ``next_cursor`` until it is
    null; ``more`` counts what follows): those the key's roles can act on or are told of
    (every one for ``admin``). An overdue one stays listed until it is met, waived or
    extended, or the case closes. ``due_on`` is the last day in the NPM's calendar and time
    zone (``timezone``), fixed when the obligation was armed; ``due_at`` the instant it ends.
    A workflow, state, role or parameter that does not exist is refused (422)."""
    engine = ctx.engine
    readable = [wf for wf in engine.catalog if who.admin or who.may_read(wf)]
    scope = readable
    if workflow is not None:
        check_workflow(workflow, (wf.id for wf in readable))
        scope = [wf for wf in readable if wf.id == workflow]
    if state is not None:
        check_state(state, scope)
    roles: set[str] | None = None if who.admin else set(who.roles)
    if role is not None:
        check_role(role, scope)
        if roles is not None and role not in roles:
            raise forbidden()
        roles = {role}
    after = None
    if cursor:
        try:
            after = decode_agenda_cursor(cursor)
        except BadCursor:
            raise ApiProblem("malformed-request", "not a cursor this API gave out", 400) from None
    page = agenda_page(
        engine,
        now=engine.clock.now(),
        workflow=workflow,
        state=state,
        roles=roles,
        within=timedelta(days=within_days) if within_days is not None else None,
        overdue_only=overdue,
        reminders=reminders,
        limit=limit,
        after=after,
    )
    return {
        "items": [e.as_json() for e in page.entries],
        "more": page.more,
        "next_cursor": encode_agenda_cursor(page.next_key) if page.next_key else None,
        "timezone": engine.settings.calendar.timezone,
    }


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
                yield json.dumps(record.export_json(), ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type=NDJSON)
