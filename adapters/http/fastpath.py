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
request, and every one whose body the model refuses, goes on to FastAPI with its body as
read: FastAPI then answers it from the start, refusals and their log events included. What
the route does once it has read a request (``instances.fire_reply``: the ``Idempotency-Key``,
the role, ``If-Match``, the fire and its reply) is then done by the same function, and what
it raises is answered by the app's own exception handlers. The trusted-host check, the body
limit and the request log run before this, as for every request.
``tests/test_http_fastpath.py`` checks that both paths answer, store and log alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

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

# Starlette's pattern for the route's path parameter: one segment, as decoded by the server
_PATH = re.compile(r"/instances/([^/]+)/transitions")
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
        raw = await _body(receive)
        if raw is None:
            return  # the client left before its body was read: nothing to fire or answer
        body = _transition(raw)
        if body is None:
            await self.app(scope, _replay(raw, receive), send)  # FastAPI answers it
            return
        scope["route"] = FIRE_ROUTE
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
            response = await _handler(scope, err)(Request(scope), err)
        else:
            response = reply_response(reply)
        await response(scope, receive, send)


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
    found = _PATH.fullmatch(scope["path"])
    if found is None:
        return None
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
        headers.setdefault(name, value.decode("latin-1"))
    if headers.get(b"content-type") != "application/json":
        return None
    ctx: Api = scope["app"].state.api
    who = verified_caller(ctx, _client(scope), headers.get(b"authorization"))
    return None if who is None else (found.group(1), who, headers)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _body(receive: Receive) -> bytes | None:
    """The whole body (the body limit outside has bounded it); ``None``: the client left."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _transition(raw: bytes) -> TransitionIn | None:
    """The body as the route's model reads it (FastAPI: ``json.loads``, then the model, in
    Python mode); ``None`` when either refuses it, in whatever way: a validation error, an
    engine limit or invalid text its validators raise, JSON nested past Python's parser.
    FastAPI then reads it again and answers the problem, as it does without this path."""
    try:
        return TransitionIn.model_validate(json.loads(raw))
    except Exception:  # declining is always safe: nothing has happened yet
        return None


def _replay(raw: bytes, receive: Receive) -> Receive:
    """``receive`` for an app that has not read the body this middleware has."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


def _handler(scope: Scope, err: Exception) -> Any:
    """The app's handler for ``err``, found as Starlette's exception middleware finds it."""
    handlers = scope["app"].exception_handlers
    for kind in type(err).__mro__:
        if kind in handlers:
            return handlers[kind]
    raise err  # pragma: no cover - _HANDLED are all handled by problems.install
