"""Wrapped data keys and the key settings, as SQL."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.rows import WrappedKey
from opcatflow.engine.sql.dialect import Dialect
from opcatflow.engine.sql.tables import data_keys, meta

_d = data_keys.c
_m = meta.c
_GET = sa.select(data_keys).where(_d.owner == sa.bindparam("owner"))


class SqlDataKeys:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def get(self, owner: str) -> WrappedKey | None:
        row = self._conn.execute(_GET, {"owner": owner}).first()
        return _key(row) if row is not None else None

    def add(self, key: WrappedKey) -> bool:
        result = self._conn.execute(
            self._dialect.insert_new(data_keys)
            .values(
                owner=key.owner,
                kek_id=key.kek_id,
                wrapped=key.wrapped,
                created_at=key.created_at,
            )
            .returning(_d.owner)  # (rowcount is -1 for this statement on psycopg)
        )
        return result.first() is not None

    def rewrap(self, key: WrappedKey, old_kek_id: str) -> bool:
        result = self._conn.execute(
            data_keys.update()
            .where(_d.owner == key.owner, _d.kek_id == old_kek_id)
            .values(kek_id=key.kek_id, wrapped=key.wrapped)
        )
        return result.rowcount == 1

    def erase(self, owner: str, at: datetime) -> None:
        tombstone = {"kek_id": "", "wrapped": b"", "erased_at": at}
        sqlite = not self._dialect.postgresql
        if sqlite:
            # SQLite zeroes what the update frees in the page, instead of leaving the old
            # wrapped key readable in the file (PostgreSQL: until VACUUM; docs/privacy.md).
            before = self._conn.exec_driver_sql("PRAGMA secure_delete").scalar()
            self._conn.exec_driver_sql("PRAGMA secure_delete=ON")
        updated = self._conn.execute(
            data_keys.update().where(_d.owner == owner).values(**tombstone)
        )
        if updated.rowcount == 0:
            self._conn.execute(data_keys.insert().values(owner=owner, created_at=at, **tombstone))
        if sqlite:
            self._conn.exec_driver_sql(f"PRAGMA secure_delete={int(before or 0)}")

    def erased_among(self, owners: Collection[str]) -> set[str]:
        found: set[str] = set()
        listed = list(owners)
        for start in range(0, len(listed), 500):
            query = sa.select(_d.owner).where(
                _d.owner.in_(listed[start : start + 500]), _d.erased_at.is_not(None)
            )
            found.update(self._conn.execute(query).scalars())
        return found

    def wrapped_with_other(
        self, kek_id: str, *, after: str = "", limit: int = 500
    ) -> list[WrappedKey]:
        query = (
            sa.select(data_keys)
            .where(_d.kek_id != kek_id, _d.owner > after, _d.erased_at.is_(None))
            .order_by(_d.owner)
            .limit(limit)
        )
        return [_key(row) for row in self._conn.execute(query)]

    def kek_counts(self) -> dict[str, int]:
        query = (
            sa.select(_d.kek_id, sa.func.count()).where(_d.erased_at.is_(None)).group_by(_d.kek_id)
        )
        return {row[0]: int(row[1]) for row in self._conn.execute(query)}

    def setting(self, name: str) -> str | None:
        value: str | None = self._conn.execute(sa.select(_m.value).where(_m.key == name)).scalar()
        return value

    def set_setting(self, name: str, value: str | None) -> None:
        self._conn.execute(meta.delete().where(_m.key == name))
        if value is not None:
            self._conn.execute(meta.insert().values(key=name, value=value))


def _key(row: Any) -> WrappedKey:
    return WrappedKey(
        owner=row.owner,
        kek_id=row.kek_id,
        wrapped=bytes(row.wrapped),
        created_at=row.created_at,
        erased_at=row.erased_at,
    )
