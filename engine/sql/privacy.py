"""The subject index, legal holds and the read log, as SQL (see docs/privacy.md)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.rows import ReadEntry
from opcatflow.engine.sql.dialect import Dialect
from opcatflow.engine.sql.positions import take_positions
from opcatflow.engine.sql.tables import READ_LOG_COUNTER, legal_holds, read_log, subjects

_s = subjects.c
_h = legal_holds.c
_CHUNK = 500


class SqlPrivacy:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def index_subject(self, instance_id: str, blind_index: str | None) -> None:
        kept = self._conn.execute(
            sa.select(_s.blind_index).where(_s.instance_id == instance_id)
        ).scalars()
        if list(kept) == ([] if blind_index is None else [blind_index]):
            return
        self._conn.execute(subjects.delete().where(_s.instance_id == instance_id))
        if blind_index is not None:
            self._conn.execute(
                subjects.insert().values(blind_index=blind_index, instance_id=instance_id)
            )

    def subject_instances(self, blind_index: str) -> list[str]:
        query = (
            sa.select(_s.instance_id).where(_s.blind_index == blind_index).order_by(_s.instance_id)
        )
        return list(self._conn.execute(query).scalars())

    def hold(self, instance_id: str, actor: str, at: datetime) -> bool:
        result = self._conn.execute(
            self._dialect.insert_new(legal_holds)
            .values(instance_id=instance_id, actor=actor[:200], held_at=at)
            .returning(_h.instance_id)
        )
        return result.first() is not None

    def release(self, instance_id: str) -> bool:
        result = self._conn.execute(legal_holds.delete().where(_h.instance_id == instance_id))
        return bool(result.rowcount)

    def held_among(self, instance_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        listed = list(instance_ids)
        for start in range(0, len(listed), _CHUNK):
            chunk = listed[start : start + _CHUNK]
            query = sa.select(_h.instance_id).where(_h.instance_id.in_(chunk))
            found.update(self._conn.execute(query).scalars())
        return found


_r = read_log.c


class SqlReadLog:
    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, entries: Sequence[ReadEntry]) -> None:
        if not entries:
            return
        rows: list[dict[str, Any]] = [
            {
                "at": e.at,
                "actor": e.actor,
                "role": e.role,
                "channel": e.channel,
                "what": e.what,
                "instance_id": e.instance_id,
                "fields": json.dumps(list(e.fields)),
                "reason": e.reason,
            }
            for e in entries
        ]
        # Positions taken with the rows: the counter row stays locked until the commit, so
        # they follow commit order as the audit trail's do (one UPDATE per unit of work).
        first = take_positions(self._conn, len(rows), READ_LOG_COUNTER)
        for i, row in enumerate(rows):
            row["position"] = first + i
        self._conn.execute(read_log.insert(), rows)

    def after(self, position: int, limit: int = 1000) -> list[ReadEntry]:
        query = sa.select(read_log).where(_r.position > position)
        rows = self._conn.execute(query.order_by(_r.position).limit(limit))
        return [_entry(row) for row in rows]

    def listing(
        self,
        *,
        instance_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[ReadEntry]:
        query = sa.select(read_log).where(_r.id > after)
        if instance_id is not None:
            query = query.where(_r.instance_id == instance_id)
        if actor is not None:
            query = query.where(_r.actor == actor)
        if since is not None:
            query = query.where(_r.at >= since)
        rows = self._conn.execute(query.order_by(_r.id).limit(max(limit, 0)))
        return [_entry(row) for row in rows]


def _entry(row: Any) -> ReadEntry:
    return ReadEntry(
        at=row.at,
        actor=row.actor,
        role=row.role,
        channel=row.channel,
        what=row.what,
        instance_id=row.instance_id,
        fields=tuple(json.loads(row.fields)),
        reason=row.reason,
        id=row.id,
        position=row.position,
    )
