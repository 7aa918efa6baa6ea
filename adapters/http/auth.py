"""Who is calling: the API key's actor and roles, for every route but health and readiness.

The API decides only who may *read* what (a key reads the workflows one of its roles belongs
to) and which of its roles a call uses; whether that role may start or fire is always the
engine's decision, from the definition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from opcatflow.adapters.http.context import Api, context_of
from opcatflow.adapters.http.keys import ADMIN, ApiKey, token_key_id
from opcatflow.adapters.http.problems import FORBIDDEN_DETAIL, ApiProblem
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.instance import Instance


@dataclass(frozen=True, slots=True)
class Caller:
    """The key a request came with."""

    key_id: str
    actor: str
    roles: tuple[str, ...]

    @property
    def admin(self) -> bool:
        return ADMIN in self.roles

    def roles_in(self, wf: CompiledWorkflow) -> list[str]:
        """The key's roles that ``wf`` declares, in the key's order."""
        return [r for r in self.roles if r in wf.roles]

    def may_read(self, wf: CompiledWorkflow) -> bool:
        return self.admin or bool(self.roles_in(wf))

    def hidden(self, wf: CompiledWorkflow, instance: Instance | None = None) -> frozenset[str]:
        """The fields of ``wf`` this key may not read on ``instance`` (the definition says
        who may: personal fields, and an embargo holding on it); without an instance, those
        it may not read on some instance (what a list filter may not use)."""
        return wf.withheld_fields(self.roles, instance)


def forbidden() -> ApiProblem:
    return ApiProblem("forbidden", FORBIDDEN_DETAIL)


def unauthorized() -> ApiProblem:
    return ApiProblem(
        "unauthorized",
        "send a valid API key: Authorization: Bearer opf_...",
        headers={"WWW-Authenticate": 'Bearer realm="opcatflow"'},
    )


class KeyCache:
    """Keys recently found live, for ``seconds``: most calls then skip the database. A key
    revoked meanwhile keeps working at most that long in this process."""

    def __init__(self, seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.now = now
        self._found: dict[str, tuple[ApiKey, float]] = {}

    def get(self, token: str) -> ApiKey | None:
        entry = self._found.get(token)
        if entry is None:
            return None
        if entry[1] < self.now():
            self._found.pop(token, None)
            return None
        return entry[0]

    def put(self, token: str, key: ApiKey) -> None:
        if self.seconds > 0:
            self._found[token] = (key, self.now() + self.seconds)


def too_many_failures(retry_after: int) -> ApiProblem:
    return ApiProblem(
        "too-many-requests",
        "too many failed authentications from this address; try again later",
        headers={"Retry-After": str(retry_after)},
    )


def _refuse(request: Request, reason: str, token: str | None) -> ApiProblem:
    """Log the failed authentication as a security event and return the 401 to raise (or a
    429 once this address has failed too often). Never logs the token or its secret."""
    context = context_of(request)
    client = request.client.host if request.client else None
    context.log.warning(
        "auth_failed",
        reason=reason,
        key_id=token_key_id(token) if token else None,
        client=client,
        method=request.method,
        path=request.url.path,
    )
    if token is not None and client is not None and context.auth_failures.failed(client):
        limit = context.auth_failures
        context.log.warning(
            "auth_limit_reached", client=client, failures=limit.limit, window_s=limit.window
        )
    return unauthorized()


class BearerKey(SecurityBase):
    """The API key, sent as ``Authorization: Bearer opf_...``: as a dependency,
    ``Depends(caller)`` is the authenticated :class:`Caller`, and FastAPI documents the
    scheme in the OpenAPI document (``HTTPBearer``) for every route that depends on it.

    One dependency rather than FastAPI's ``HTTPBearer`` and a function over it: FastAPI
    solves each level of dependencies anew on every request."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            description="An API key from `opcatflow apikey create`: "
            "`Authorization: Bearer opf_...`."
        )
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> Caller:
        """The authenticated caller. Raises 401 for a missing, unknown or revoked key (the
        answer is the same for each, so it tells nothing about which keys exist), and 429 to
        an address that has failed too often lately (``ApiConfig.auth_failure_limit``)."""
        context = context_of(request)
        client = request.client.host if request.client else None
        wait = context.auth_failures.retry_after(client) if client is not None else None
        if wait is not None:
            raise too_many_failures(wait)
        authorization = request.headers.get("authorization")
        token = bearer_token(authorization)
        if token is None:
            # no key at all is not a guess: logged, but not counted against the address
            reason = "missing" if authorization is None else "not_bearer"
            raise _refuse(request, reason, None)
        key = context.key_cache.get(token)
        if key is None:
            key, failure = await run_in_threadpool(context.keys.check, token)
            if key is None:
                raise _refuse(request, failure or "unknown_key", token)
            context.key_cache.put(token, key)
        request.state.key_id = key.id  # for the request log
        return Caller(key.id, key.actor, key.roles)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; ``None`` for any other."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if token and scheme.lower() == "bearer" else None


def verified_caller(context: Api, client: str | None, authorization: str | None) -> Caller | None:
    """The caller whose key this process verified lately (it is in the key cache, which
    :class:`BearerKey` fills), when its address is not held back by the failure limit.
    ``None``: the request needs BearerKey's whole check, and its answer."""
    if client is not None and context.auth_failures.retry_after(client) is not None:
        return None
    token = bearer_token(authorization)
    key = context.key_cache.get(token) if token is not None else None
    return None if key is None else Caller(key.id, key.actor, key.roles)


caller = BearerKey()


def require_admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.admin:
        raise forbidden()
    return who


def pick_role(who: Caller, wanted: str | None, candidates: Iterable[str]) -> str:
    """The role a write acts in: the one asked for (it must be one of the key's), else the
    first of ``candidates`` (the key's roles, those the engine says could act first); a key
    with none of them is refused here, before anything is written."""
    if wanted is not None:
        if wanted not in who.roles:
            raise forbidden()
        return wanted
    for role in candidates:
        return role
    raise forbidden()
