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
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from opcatflow.adapters.http.context import context_of
from opcatflow.adapters.http.keys import ADMIN, ApiKey
from opcatflow.adapters.http.problems import FORBIDDEN_DETAIL, ApiProblem
from opcatflow.engine.compiled import CompiledWorkflow

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `opcatflow apikey create`: `Authorization: Bearer opf_...`.",
)


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

    def hidden(self, wf: CompiledWorkflow) -> frozenset[str]:
        """The personal fields of ``wf`` this key may not read (the definition says who may)."""
        return wf.withheld_fields(self.roles)


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


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The authenticated caller. Raises 401 for a missing, unknown or revoked key (the
    answer is the same for each, so it tells nothing about which keys exist)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    context = context_of(request)
    token = credentials.credentials
    key = context.key_cache.get(token)
    if key is None:
        key = await run_in_threadpool(context.keys.authenticate, token)
        if key is None:
            raise unauthorized()
        context.key_cache.put(token, key)
    request.state.key_id = key.id  # for the request log
    return Caller(key.id, key.actor, key.roles)


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
