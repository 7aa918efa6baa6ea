"""The HTTP API's records as SQL: idempotency replies and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.ports import DuplicateKey
from opcatflow.engine.rows import ApiKeyRow, IdempotencyRecord
from opcatflow.engine.sql import direct
from opcatflow.engine.sql.tables import api_keys, idempotency

_i = idempotency.c
_k = api_keys.c
_ONE_REPLY = (_i.api_key_id == sa.bindparam("api_key_id"), _i.key == sa.bindparam("key"))
_SELECT_REPLY = sa.select(idempotency).where(*_ONE_REPLY)
_INSERT_REPLY = idempotency.insert()
_REPLY_COLUMNS = tuple(column.name for column in idempotency.columns)  # IdempotencyRecord's
_DELETE_REPLY = idempotency.delete().where(*_ONE_REPLY)


class SqlIdempotency:
    """Each keyed write reads its reply's row twice (before the fire, and in its transaction)
    and inserts it once: these run straight on the driver, as the write path's own do."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, api_key_id: str, key: str) -> IdempotencyRecord | None:
        row = direct.first(self._conn, _SELECT_REPLY, {"api_key_id": api_key_id, "key": key})
        if row is None:
            return None
        found = dict(zip(_REPLY_COLUMNS, row, strict=True))
        return IdempotencyRecord(**{**found, "headers": dict(found["headers"])})

    def add(self, record: IdempotencyRecord) -> None:
        try:
            row = {name: getattr(record, name) for name in _REPLY_COLUMNS}
            direct.execute_many(self._conn, _INSERT_REPLY, [row])
        except sa.exc.IntegrityError as err:
            raise DuplicateKey("this idempotency key is taken") from err

    def remove(self, api_key_id: str, key: str) -> None:
        direct.rowcount(self._conn, _DELETE_REPLY, {"api_key_id": api_key_id, "key": key})

    def purge(self, now: datetime) -> int:
        result = self._conn.execute(idempotency.delete().where(_i.expires_at <= now))
        return int(result.rowcount or 0)


class SqlApiKeys:
    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, key: ApiKeyRow) -> None:
        try:
            self._conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    secret_hash=key.secret_hash,
                    actor=key.actor,
                    roles=list(key.roles),
                    note=key.note,
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )
        except sa.exc.IntegrityError as err:
            raise DuplicateKey(f"API key {key.id} exists") from err

    def get(self, key_id: str) -> ApiKeyRow | None:
        row = self._conn.execute(sa.select(api_keys).where(_k.id == key_id)).first()
        return _key(row) if row is not None else None

    def listing(self, *, include_revoked: bool = False) -> list[ApiKeyRow]:
        query = sa.select(api_keys).order_by(_k.created_at, _k.id)
        if not include_revoked:
            query = query.where(_k.revoked_at.is_(None))
        return [_key(row) for row in self._conn.execute(query)]

    def revoke(self, key_id: str, at: datetime) -> None:
        self._conn.execute(
            api_keys.update().where(_k.id == key_id, _k.revoked_at.is_(None)).values(revoked_at=at)
        )


def _key(row: Any) -> ApiKeyRow:
    return ApiKeyRow(
        id=row.id,
        secret_hash=row.secret_hash,
        actor=row.actor,
        roles=tuple(row.roles),
        note=row.note,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
