"""Positions: the counters that number audit records and read-log entries in commit order."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.sql import direct
from opcatflow.engine.sql import tables as t

_P = t.audit_position.c
_TAKE_POSITIONS = (
    t.audit_position.update()
    .where(_P.id == sa.bindparam("counter"))
    .values(last=_P.last + sa.bindparam("count"))
    .returning(_P.last)
)


def take_positions(conn: Connection, count: int, counter: int = t.AUDIT_COUNTER) -> int:
    """Reserve ``count`` positions of ``counter`` (the audit trail's, or the read log's) in
    ``conn``'s transaction; returns the first. The counter row stays locked until that
    transaction ends (for tools that bulk-load records, such as test and benchmark fixtures:
    the engine's own records get theirs at commit)."""
    taken = direct.first(conn, _TAKE_POSITIONS, {"count": count, "counter": counter})
    assert taken is not None, f"the position counter row {counter} is missing"
    last: int = taken[0]
    return last - count + 1
