"""``/instances``: start, list, read, what the caller may fire, history, and firing a trigger.

A key reads the instances of workflows one of its roles belongs to (``admin`` reads all).
Starting and firing act as the key's actor in one of its roles; the engine alone decides
whether that role may, and audits a refusal like any other.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from opcatflow.adapters.http.auth import Caller, caller, forbidden, pick_role
from opcatflow.adapters.http.context import Api, api, context_of
from opcatflow.adapters.http.idempotency import (
    HEADER,
    Record,
    Reply,
    answers,
    fingerprint,
    parse_key,
)
from opcatflow.adapters.http.problems import MEDIA_TYPE, ApiProblem, refusal_body, responses
from opcatflow.adapters.http.queries import known_query
from opcatflow.adapters.http.reads import ReadReason, log_reads
from opcatflow.adapters.http.schemas import (
    AuditRecordOut,
    FiredOut,
    InstanceOut,
    InstancePage,
    StartedOut,
    StartIn,
    TransitionIn,
    TriggerOut,
)
from opcatflow.adapters.http.views import etag, instance_view, record_view
from opcatflow.adapters.paging import BadCursor, decode_cursor, encode_cursor
from opcatflow.adapters.views import ref_ids
from opcatflow.engine.audit import AuditRecordJson
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.errors import TransitionRefused
from opcatflow.engine.filters import check_state, check_workflow, typed_where
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.readlog import HISTORY_FIELDS, visible_personal
from opcatflow.engine.results import FireResult
from opcatflow.engine.runtime import Engine, ListKey, Started, list_key

router = APIRouter(tags=["instances"])

# Headers the write routes read themselves (FastAPI's header parameters cost more per call
# than the rest of the route); the OpenAPI document still describes them.
IDEMPOTENCY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Any unique string (a UUID): a retry with the same key and body gets the "
    "first response instead of acting twice.",
}
IF_MATCH_PARAMETER = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": 'The ETag last read (e.g. "3"): a newer version answers 412.',
}
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ETAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')
_SCAN = 10  # a filtered page reads at most this many pages' worth of rows
_ETAG_HEADER = {"ETag": {"description": 'The version, e.g. "3".', "schema": {"type": "string"}}}


def instance_url(request: Request, instance_id: str) -> str:
    """The absolute URL of an instance: on the public URL when the server knows it, else on
    the request's ``Host`` (which the trusted-host check has let through)."""
    path = request.app.url_path_for("get_instance", instance_id=instance_id)
    public = context_of(request).config.absolute(str(path))
    return public or str(request.url_for("get_instance", instance_id=instance_id))


def reply_response(reply: Reply) -> JSONResponse:
    media = MEDIA_TYPE if reply.status >= 400 else "application/json"
    return JSONResponse(reply.body, reply.status, headers=reply.headers, media_type=media)


def _readable(ctx: Api, who: Caller, instance: Instance) -> CompiledWorkflow:
    wf = ctx.engine.workflow(instance.workflow_id, instance.workflow_version)
    if not who.may_read(wf):
        raise forbidden()
    return wf


def _read(ctx: Api, who: Caller, instance_id: str) -> tuple[Instance, CompiledWorkflow]:
    instance = ctx.engine.get(instance_id)
    return instance, _readable(ctx, who, instance)


def _where(items: list[str], wf: CompiledWorkflow | None, hidden: frozenset[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` filters, each VALUE read as its field's type says (so the database
    compares like with like); an unknown field or enum value is refused (422)."""
    if items and wf is None:
        raise ApiProblem(
            "invalid-request", "where needs workflow=ID: its fields say how to compare"
        )
    conditions: dict[str, str] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not _FIELD.match(name):
            raise ApiProblem("invalid-request", f"expected where=FIELD=VALUE, got {item!r}")
        if name in hidden:
            raise ApiProblem(
                "invalid-request",
                f"field {name!r} is personal or embargoed, withheld from this key: it cannot be "
                "a filter",
            )
        if wf is not None and name in wf.schema.sealed:
            raise ApiProblem(
                "invalid-request",
                f"field {name!r} is personal or confidential, stored encrypted: it cannot be "
                "a filter",
            )
        conditions[name] = raw
    return typed_where(conditions, [wf]) if wf is not None else {}


# -- firing (declared first: routes are matched in order) -----------------------------------------


def expected_version(if_match: str | None, current: Callable[[], int]) -> int | None:
    """The version an ``If-Match`` header allows (``None``: any).

    Raises:
        ApiProblem: 400 for a malformed header; 412 when no tag can match (weak tags never
            match, RFC 9110 section 13.1.1).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions: set[int] = set()
    for part in if_match.split(","):
        match = _ETAG.fullmatch(part)
        if match is None:
            raise ApiProblem("malformed-request", "If-Match must list entity tags", status=400)
        weak, tag = match.groups()
        if not weak and tag.isdigit() and len(tag) < 10:
            versions.add(int(tag))
    if len(versions) == 1:
        return versions.pop()
    now = current() if versions else -1
    if now in versions:
        return now
    raise ApiProblem(
        "conflict",
        "If-Match names no version this instance is at",
        extra={"current_version": now} if now >= 0 else {},
    )


@router.post(
    "/instances/{instance_id}/transitions",
    response_model=FiredOut,
    responses={
        200: {"headers": _ETAG_HEADER},
        **responses(
            "forbidden",
            "not-found",
            "refused",
            "invalid-data",
            "limit-exceeded",
            "invalid-text",
            "conflict",
            "idempotency-key-reused",
        ),
    },
    openapi_extra={"parameters": [IF_MATCH_PARAMETER, IDEMPOTENCY_PARAMETER]},
)
async def fire_transition(
    *,
    instance_id: str,
    body: TransitionIn,
    request: Request,
    who: Annotated[Caller, Depends(caller)],
) -> Response:
    """Fire a trigger, in one transaction. A refusal is audited, then answered as a problem
    (``refused``; a role the key acts in that may not: 403)."""
    # (a plain fire usually never gets here: fastpath.FireFastPath answers it first)
    reply = await fire_reply(
        context_of(request),
        who,
        instance_id,
        body,
        idempotency_key=request.headers.get(HEADER),
        if_match=request.headers.get("if-match"),
    )
    return reply_response(reply)


# the route above, which the request log names for the fast path's answers too
FIRE_ROUTE = next(
    r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is fire_transition
)


async def fire_reply(
    ctx: Api,
    who: Caller,
    instance_id: str,
    body: TransitionIn,
    *,
    idempotency_key: str | None,
    if_match: str | None,
) -> Reply:
    """The fire a request asks for, and its reply: all the route does once the request is
    read and its key known (``fastpath.FireFastPath`` calls it too).

    Raises:
        ApiProblem: a malformed ``Idempotency-Key``, a role that is not the key's, an
            ``If-Match`` naming another version, a key reused for another request.
        OpcatflowError: what the engine raises (a refusal is stored and answered instead).
    """
    engine = ctx.engine
    key = parse_key(idempotency_key)
    # The engine picks the role (the first of the key's that may, in the workflow's order)
    # and reads the instance once, under its lock.
    roles = [pick_role(who, body.role, ())] if body.role is not None else list(who.roles)

    if key is None and if_match is None:
        # Nothing to read before the fire (no stored reply to replay, no version to look
        # up): it joins the next group commit without holding a thread while it waits.
        fired, replies = _queue(engine, who, instance_id, body, roles, expected=None, record=None)
        with contextlib.suppress(TransitionRefused):  # stored and answered by `also`
            await ctx.settled(fired)
        return replies[0]

    idempotency = ctx.idempotency
    path = f"/instances/{instance_id}/transitions"
    wanted = fingerprint("POST", path, body.model_dump(mode="json"))

    def read_first() -> tuple[int | None, Reply | None]:
        expected = expected_version(if_match, lambda: engine.get(instance_id).version)
        return expected, idempotency.stored(who.key_id, key, wanted) if key else None

    # What is read first is read on the API's threads; the fire then waits on the loop.
    expected, stored = await ctx.blocking(read_first)
    if stored is not None:
        return stored
    record = idempotency.recorder(who.key_id, key, "POST", path, wanted) if key else None
    fired, replies = _queue(engine, who, instance_id, body, roles, expected=expected, record=record)
    try:
        with contextlib.suppress(TransitionRefused):  # stored and answered by `also`
            await ctx.settled(fired)
    except Exception as err:
        if key is None or not answers(err):
            raise
        return await ctx.blocking(partial(idempotency.after, err, who.key_id, key, wanted))
    return replies[0]


def _answer(
    engine: Engine, who: Caller, record: Record | None, replies: list[Reply]
) -> Callable[[UnitOfWork, FireResult], None]:
    """The fire's ``also``: the reply (the instance as the key may see it, or the refusal's
    problem), made and, under an ``Idempotency-Key``, recorded in the fire's unit of work."""

    def also(uow: UnitOfWork, result: FireResult) -> None:
        if result.refusal is not None:
            problem = refusal_body(result.refusal)
            reply = Reply(problem["status"], problem)
        else:
            instance = result.instance
            assert instance is not None
            wf = engine.workflow(instance.workflow_id, instance.workflow_version)
            view: FiredOut = {
                **instance_view(instance, wf, who.hidden(wf, instance)),
                "opened": list(result.opened),
                "notices": list(result.notices),
            }
            reply = Reply(200, view, {"ETag": etag(instance)})
        if record is not None:
            record(uow, reply)
        # a fire runs again alone if its batch's commit failed: the reply is the last run's
        replies[:] = [reply]

    return also


def _queue(
    engine: Engine,
    who: Caller,
    instance_id: str,
    body: TransitionIn,
    roles: list[str],
    *,
    expected: int | None,
    record: Record | None,
) -> tuple[Future[FireResult], list[Reply]]:
    """The fire queued for the next group commit, and where its reply will be."""
    replies: list[Reply] = []
    fired = engine.fire_soon(
        instance_id,
        body.trigger,
        actor=who.actor,
        roles=roles,
        data=body.data,
        reason=body.reason,
        expected_version=expected,
        also=_answer(engine, who, record, replies),
    )
    return fired, replies


# -- start and list ---------------------------------------------------------------------------


@router.post(
    "/instances",
    status_code=201,
    response_model=StartedOut,
    responses={
        201: {
            "headers": {
                **_ETAG_HEADER,
                "Location": {"description": "The instance.", "schema": {"type": "string"}},
            }
        },
        **responses(
            "forbidden",
            "not-found",
            "invalid-data",
            "refused",
            "limit-exceeded",
            "invalid-text",
            "idempotency-key-reused",
        ),
    },
    openapi_extra={"parameters": [IDEMPOTENCY_PARAMETER]},
)
def start_instance(
    *, body: StartIn, request: Request, who: Annotated[Caller, Depends(caller)]
) -> Response:
    """Start an instance (``Location`` and ``ETag`` say where it is and its version). Data
    outside what the workflow lets a start write, or that the role may not read, is refused
    (``refused``, kind ``data``)."""
    ctx = context_of(request)
    engine = ctx.engine
    wf = engine.workflow(body.workflow, body.version)
    if not who.may_read(wf):
        raise forbidden()
    if body.parent_id is not None:
        _read(ctx, who, body.parent_id)
    mine = who.roles_in(wf)
    role = pick_role(who, body.role, [r for r in mine if r in wf.start_roles] + mine)

    def work(record: Record | None) -> Reply:
        replies: list[Reply] = []

        def also(uow: UnitOfWork, started: Started) -> None:
            instance = started.instance
            headers = {
                "ETag": etag(instance),
                "Location": instance_url(request, instance.id),
            }
            view: StartedOut = {
                **instance_view(instance, wf, who.hidden(wf, instance)),
                "notices": list(started.notices),
            }
            reply = Reply(201, view, headers)
            if record is not None:
                record(uow, reply)
            replies[:] = [reply]  # the last run's (see _answer)

        engine.start_result(
            wf.id,
            actor=who.actor,
            role=role,
            data=body.data,
            parent_id=body.parent_id,
            reason=body.reason,
            version=body.version,
            also=also,
            instance_id=body.id,
        )
        return replies[0]

    key = parse_key(request.headers.get(HEADER))
    payload = body.model_dump(mode="json")
    return reply_response(
        ctx.idempotency.run(
            work, key_id=who.key_id, key=key, method="POST", path="/instances", body=payload
        )
    )


@router.get(
    "/instances",
    response_model=InstancePage,
    responses=responses("forbidden", "not-found", "invalid-request"),
    dependencies=[Depends(known_query)],
)
def list_instances(
    *,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    workflow: Annotated[str | None, Query(max_length=64, description="Workflow id.")] = None,
    state: Annotated[
        str | None,
        Query(max_length=64, description="A state of the workflow (of any, without workflow)."),
    ] = None,
    parent_id: Annotated[str | None, Query(max_length=36)] = None,
    where: Annotated[
        list[str] | None,
        Query(
            description="FIELD=VALUE, repeatable, with workflow=: VALUE is read as the field's "
            "type (an integer, true or false, an enum value, else text); on a list of text or "
            "register ids, the list holds VALUE. Personal fields the key may not read are "
            "refused."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="From next_cursor.")] = None,
    reason: ReadReason = None,
) -> dict[str, Any]:
    """Instances oldest first, a page at a time (a page may hold fewer than ``limit`` when
    the key may not read some workflows; follow ``next_cursor`` until it is null). The
    cursor is keyset paging on (created_at, id): pages neither skip nor repeat an instance
    while others are started. A state, field, enum value or parameter that does not exist
    is refused (422, with a did-you-mean), never answered with an empty list."""
    engine = ctx.engine
    readable = [wf for wf in engine.catalog if who.may_read(wf)]
    wanted = None
    if workflow is not None:
        if workflow not in {wf.id for wf in engine.catalog}:
            check_workflow(workflow, (wf.id for wf in readable))  # 422, naming readable ones
        wanted = engine.workflow(workflow)
        if not who.may_read(wanted):
            raise forbidden()
    if state is not None:
        check_state(state, [wf for wf in readable if wf.id == workflow] if wanted else readable)
    hidden = who.hidden(wanted) if wanted is not None else frozenset()
    filters = _where(where or [], wanted, hidden)
    after: ListKey | None = None
    if cursor:
        try:
            after = decode_cursor(cursor)
        except BadCursor:
            raise ApiProblem("malformed-request", "not a cursor this API gave out", 400) from None
    shown: list[tuple[Instance, CompiledWorkflow, frozenset[str]]] = []
    reads: list[tuple[str | None, tuple[str, ...]]] = []
    done = False
    for _ in range(_SCAN):
        batch = engine.query(
            workflow=workflow,
            state=state,
            where=filters,
            parent_id=parent_id,
            after=after,
            limit=limit,
        )
        for instance in batch:
            after = list_key(instance)
            wf = engine.workflow(instance.workflow_id, instance.workflow_version)
            if who.may_read(wf):
                hidden = who.hidden(wf, instance)
                shown.append((instance, wf, hidden))
                reads.append((instance.id, visible_personal(wf, hidden)))
                if len(shown) == limit:
                    break
        if len(batch) < limit and (not batch or after == list_key(batch[-1])):
            done = True  # the last rows there are, all read
            break
        if len(shown) == limit:
            break
    # the titles of every entry the page refers to, in one read
    entries = engine.registers.titles(i for inst, wf, _ in shown for i in ref_ids(inst, wf))
    items = [instance_view(inst, wf, hidden, entries) for inst, wf, hidden in shown]
    log_reads(ctx, who, "list", reads, reason)
    next_cursor = None if done or after is None else encode_cursor(after)
    return {"items": items, "next_cursor": next_cursor}


# -- one instance -----------------------------------------------------------------------------


@router.get(
    "/instances/{instance_id}",
    response_model=InstanceOut,
    responses={200: {"headers": _ETAG_HEADER}, **responses("forbidden", "not-found")},
    dependencies=[Depends(known_query)],
)
def get_instance(
    instance_id: str,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    reason: ReadReason = None,
) -> JSONResponse:
    """One instance; its ``ETag`` is its version. A read of personal values is logged."""
    instance, wf = _read(ctx, who, instance_id)
    hidden = who.hidden(wf, instance)
    log_reads(ctx, who, "show", [(instance_id, visible_personal(wf, hidden))], reason)
    entries = ctx.engine.registers.titles(ref_ids(instance, wf))
    return JSONResponse(
        instance_view(instance, wf, hidden, entries), headers={"ETag": etag(instance)}
    )


@router.get(
    "/instances/{instance_id}/triggers",
    response_model=list[TriggerOut],
    responses=responses("forbidden", "not-found"),
    dependencies=[Depends(known_query)],
)
def get_triggers(
    instance_id: str,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
) -> list[TriggerOut]:
    """The triggers the key's roles may fire now, each saying whether its guards pass."""
    _, wf = _read(ctx, who, instance_id)
    merged: dict[str, TriggerOut] = {}
    for role in who.roles_in(wf):
        for option in ctx.engine.available_triggers(instance_id, role, who.actor):
            entry = merged.setdefault(
                option.trigger, {**option.as_json(), "ready": False, "roles": []}
            )
            entry["roles"].append(role)
            if option.ready and not entry["ready"]:
                entry.update(
                    {"ready": True, "blocked_by": None, "dest": option.dest, "label": option.label}
                )
    return list(merged.values())


@router.get(
    "/instances/{instance_id}/history",
    response_model=list[AuditRecordOut],
    responses=responses("forbidden", "not-found"),
    dependencies=[Depends(known_query)],
)
def get_history(
    instance_id: str,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    reason: ReadReason = None,
) -> list[AuditRecordJson]:
    """The instance's audit trail, oldest first. With personal fields visible (its reasons
    opened), the read is logged."""
    instance, wf = _read(ctx, who, instance_id)
    hidden = who.hidden(wf, instance)  # an embargo is read on the instance as it is now
    shown = visible_personal(wf, hidden)
    log_reads(ctx, who, "history", [(instance_id, (*shown, *HISTORY_FIELDS) if shown else ())],
              reason)  # fmt: skip
    parts = wf.schema.personal_parts
    return [record_view(r, hidden, parts) for r in ctx.engine.history(instance_id)]
