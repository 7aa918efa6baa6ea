"""API keys: an actor and the roles it acts in, stored hashed, revocable, listable.

A key reads ``opf_<id>_<secret>``. The id is public (it names the key in lists, logs and
the idempotency records); only the SHA-256 of the secret is stored, so a copy of the
database lets nobody call the API. The secret is 256 random bits, so a plain hash is enough
(a slow password hash protects guessable secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from opcatflow.engine.clock import Clock
from opcatflow.engine.inputs import check_call
from opcatflow.engine.ports import Store
from opcatflow.engine.rows import ApiKeyRow

PREFIX = "opf_"
ADMIN = "admin"  # the API's own role: outbox status, audit verification and export
RESERVED = frozenset({"scheduler"})  # acts only through the deadline scheduler
_KEY_ID = re.compile(r"[0-9a-f]{1,16}")  # create() makes 12 hex digits

# Why a presented token did not authenticate (logged, never answered).
AuthFailure = Literal["malformed", "unknown_key", "wrong_secret", "revoked"]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key, without its secret."""

    id: str
    actor: str
    roles: tuple[str, ...]
    note: str | None
    created_at: datetime
    revoked_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actor": self.actor,
            "roles": list(self.roles),
            "note": self.note,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        actor=row.actor,
        roles=tuple(row.roles),
        note=row.note,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeys:
    """The API keys of one store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(
        self, actor: str, roles: Sequence[str], note: str | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; returns it and the token to hand over (shown once, never stored).

        Raises:
            ValueError: no roles, a reserved role, or an empty actor.
            LimitExceeded, InvalidText: the actor (or the note, held to the limit of a
                reason) past its limit or not valid Unicode.
        """
        check_call(actor=actor, role="", reason=note)
        roles = tuple(dict.fromkeys(roles))
        if not actor.strip():
            raise ValueError("a key needs an actor")
        if not roles:
            raise ValueError("a key needs at least one role")
        reserved = sorted(RESERVED.intersection(roles))
        if reserved:
            raise ValueError(f"role {reserved[0]!r} is reserved for the deadline scheduler")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.store.write() as uow:
            uow.keys.add(ApiKeyRow(key_id, _digest(secret), actor, roles, note, now, None))
        return ApiKey(key_id, actor, roles, note, now, None), f"{PREFIX}{key_id}_{secret}"

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        with self.store.read() as uow:
            return [_key(row) for row in uow.keys.listing(include_revoked=include_revoked)]

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key (already revoked: unchanged). Returns it, or ``None`` if unknown."""
        with self.store.write() as uow:
            uow.keys.revoke(key_id, self.clock.now())
            row = uow.keys.get(key_id)
        return _key(row) if row is not None else None

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key this token belongs to, or ``None`` (unknown, wrong secret, revoked)."""
        return self.check(token)[0]

    def check(self, token: str) -> tuple[ApiKey | None, AuthFailure | None]:
        """The live key this token belongs to, or why there is none (for the operators' log;
        a client is never told which)."""
        key_id = token_key_id(token)
        secret = token[len(PREFIX) + len(key_id or "") + 1 :]
        if key_id is None or not secret:
            return None, "malformed"
        with self.store.read() as uow:
            row = uow.keys.get(key_id)
        # compare even when there is no row, so timing says nothing about which ids exist
        stored = row.secret_hash if row is not None else "0" * 64
        if not hmac.compare_digest(stored, _digest(secret)) or row is None:
            return None, "unknown_key" if row is None else "wrong_secret"
        if row.revoked_at is not None:
            return None, "revoked"
        return _key(row), None


def token_key_id(token: str) -> str | None:
    """The key id a token names (``opf_<id>_<secret>``), or ``None`` when it is not of that
    shape. Only an id of the shape ``create`` makes is returned, so nothing else the caller
    sent (a secret pasted in the wrong place) reaches a log."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, _ = token[len(PREFIX) :].partition("_")
    if not sep or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id


def known_roles(role_sets: Iterable[Iterable[str]]) -> set[str]:
    """The roles a key may hold: every workflow role, and ``admin``."""
    return {ADMIN}.union(*role_sets)
