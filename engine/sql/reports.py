"""``SqlReports``: the report projection's rows (the ``ReportRepository`` port)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.rows import Fact
from opcatflow.engine.sql import tables as t

DIGEST_KEY = "report_projection"
_F = t.report_facts.c
_M = t.meta.c
_INSERT = t.report_facts.insert()
_DELETE = t.report_facts.delete().where(
    _F.workflow_id == sa.bindparam("b_workflow"), _F.instance_id == sa.bindparam("b_instance")
)
# Rows fetched at a time: PostgreSQL streams them through a server-side cursor.
_STREAM = 10_000


def facts_query(workflow_id: str, fields: Collection[str]) -> sa.Select[Any]:
    """The rows of ``fields`` of a workflow's instances, in primary-key order: a range scan
    of the key (``workflow_id, instance_id, field, entry``), no sort and no JSON."""
    return (
        sa.select(_F.instance_id, _F.field, _F.entry, _F.value)
        .where(_F.workflow_id == workflow_id, _F.field.in_(sorted(fields)))
        .order_by(_F.instance_id, _F.field, _F.entry)
    )


class SqlReports:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def replace(self, workflow_id: str, instance_id: str, facts: Sequence[Fact]) -> None:
        conn = self._conn
        conn.execute(_DELETE, {"b_workflow": workflow_id, "b_instance": instance_id})
        if facts:
            conn.execute(
                _INSERT,
                [
                    {
                        "workflow_id": workflow_id,
                        "instance_id": instance_id,
                        "field": f.field,
                        "entry": f.entry,
                        "value": f.value,
                    }
                    for f in facts
                ],
            )

    def facts(
        self, workflow_id: str, fields: Collection[str]
    ) -> Iterator[tuple[str, str, str, str]]:
        statement = facts_query(workflow_id, fields).execution_options(yield_per=_STREAM)
        for row in self._conn.execute(statement):
            yield row[0], row[1], row[2], row[3]

    def clear(self) -> None:
        self._conn.execute(t.report_facts.delete())

    def digest(self) -> str | None:
        value: str | None = self._conn.execute(
            sa.select(_M.value).where(_M.key == DIGEST_KEY)
        ).scalar()
        return value

    def set_digest(self, digest: str) -> None:
        self._conn.execute(t.meta.delete().where(_M.key == DIGEST_KEY))
        self._conn.execute(t.meta.insert().values(key=DIGEST_KEY, value=digest))
