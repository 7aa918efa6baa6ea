"""The API's busiest request, firing a trigger, answered before FastAPI routes it.

Why: FastAPI's routing, dependency solving and body handling cost the event loop about
170 µs per request, twice what is left of a fire's answer without them, and the loop's time
is what bounds the API under load (the committing thread needs the same interpreter lock).
``bench.http`` on two cores: plain fires went from 0.44-0.48 to 0.62-0.67 of direct
``Engine.fire``.

Nothing is decided here that the route does not decide the same way. This takes only a
request it reads exactly as FastAPI would for ``instances.fire_transition``: ``POST
/instances/{id}/transitions`` with no query, a body declared ``application/json`` that the
route's own model accepts, and a key this process verified lately (``auth.verified_caller``:
in the key cache, from an address the failure limit does not hold back). Every other
request, every one whose body the model refuses and every client that leaves mid-body goes
on to FastAPI with the messages read: FastAPI then answers it from the start, refusals and
their log events included (a body over the limit is answered by the app's handler, as the
route answers it). What
the route does once it has read a request (``instances.fire_reply``: the ``Idempotency-Key``,
the role, ``If-Match``, the fire and its reply) is then done by the same function, and what
it raises is answered by the app's own exception handlers. The trusted-host check, the body
limit and the request log run before this, as for every request.
``tests/test_http_fastpath.py`` checks that both paths answer, store and log alike.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opcatflow.adapters.http.auth import Caller, verified_caller
from opcatflow.adapters.http.context import Api
from opcatflow.adapters.http.idempotency import HEADER
from opcatflow.adapters.http.instances import FIRE_ROUTE, fire_reply, reply_response
from opcatflow.adapters.http.problems import ApiProblem
from opcatflow.adapters.http.schemas import TransitionIn
from opcatflow.engine.errors import OpcatflowError

_IDEMPOTENCY_KEY = HEADER.lower().encode()
_HANDLED = (ApiProblem, OpcatflowError, HTTPException)  # what the app's handlers answer


class FireFastPath:
    """ASGI middleware, innermost of the app's own (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asked = _fire_request(scope)
        if asked is None:
            await self.app(scope, receive, send)
            return
        instance_id, who, headers = asked
        scope["route"] = FIRE_ROUTE  # matched before the body is read, as by FastAPI
        try:
            received, raw = await _body(receive)
        except HTTPException as err:  # over the body limit: as FastAPI answers it, reading
            await _answer_error(scope, receive, send, err)
            return
        body = _transition(raw) if raw is not None else None
        if body is None:  # FastAPI answers it, from the messages this read
            await self.app(scope, _replay(received, receive), send)
            return
        scope.setdefault("state", {})["key_id"] = who.key_id  # for the request log
        try:
            reply = await fire_reply(
                scope["app"].state.api,
                who,
                instance_id,
                body,
                idempotency_key=headers.get(_IDEMPOTENCY_KEY),
                if_match=headers.get(b"if-match"),
            )
        except _HANDLED as err:
            await _answer_error(scope, receive, send, err)
        else:
            await reply_response(reply)(scope, receive, send)


def _fire_request(scope: Scope) -> tuple[str, Caller, dict[bytes, str]] | None:
    """The instance, caller and headers of a fire this path answers; ``None``: FastAPI
    answers the request."""
    if (
        scope["type"] != "http"
        or scope["method"] != "POST"
        or scope["query_string"]
        or scope.get("root_path")
    ):
        return None
    found = FIRE_ROUTE.path_regex.match(scope["path"])  # the route's own pattern
    if found is None:
        return None
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
        headers.setdefault(name, value.decode("latin-1"))
    if headers.get(b"content-type") != "application/json":
        return None
    ctx: Api = scope["app"].state.api
    who = verified_caller(ctx, _client(scope), headers.get(b"authorization"))
    return None if who is None else (found["instance_id"], who, headers)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages received, and the whole body they carry (the body limit outside has
    bounded it); ``None`` when the client left before sending it all."""
    received: list[Message] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return received, None
        if not message.get("more_body", False):
            return received, b"".join(m.get("body", b"") for m in received)


def _transition(raw: bytes) -> TransitionIn | None:
    """The body as the route's model reads it (FastAPI: ``json.loads``, then the model, in
    Python mode); ``None`` when either refuses it, in whatever way: a validation error, an
    engine limit or invalid text its validators raise, JSON nested past Python's parser.
    FastAPI then reads it again and answers the problem, as it does without this path."""
    try:
        return TransitionIn.model_validate(json.loads(raw))
    except Exception:  # declining is always safe: nothing has happened yet
        return None


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` for the app behind: the messages this middleware took, then the rest."""
    pending = list(received)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _answer_error(scope: Scope, receive: Receive, send: Send, err: Exception) -> None:
    """Answer ``err`` with the app's handler for it, found as Starlette's exception
    middleware finds it."""
    handlers = scope["app"].exception_handlers
    for kind in type(err).__mro__:
        if kind in handlers:
            response = await handlers[kind](Request(scope), err)
            await response(scope, receive, send)
            return
    raise err  # pragma: no cover - _HANDLED are all handled by problems.install
