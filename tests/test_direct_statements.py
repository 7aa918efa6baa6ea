"""The write path's statements run on the driver's cursor (engine/sql/direct.py) store and
read exactly what ``Connection.execute`` stores and reads; while someone listens for
statements, they go through ``Connection.execute`` and are seen."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import sqlalchemy as sa
from privacy_helpers import complaint, privacy_engine
from sqlalchemy import event

from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.sql import tables as t


def _fire_twice(engine: Engine, instance_id: str) -> None:
    engine.fire(instance_id, "note", actor="clerk.1", role="clerk",
                data={"place": "cell 4", "story": "Ana was moved"}, reason="Ana asked")  # fmt: skip
    engine.fire(instance_id, "note", actor="clerk.1", role="clerk", data={"place": None})


def _stored(engine: Engine, instance_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The instance row and its audit rows as stored, less what differs between any two
    instances (ids, hashes, ciphertexts, positions)."""
    sql = engine.store.engine  # type: ignore[attr-defined]
    with sql.connect() as conn:
        row = conn.execute(sa.select(t.instances).where(t.instances.c.id == instance_id)).one()
        records = conn.execute(
            sa.select(t.audit).where(t.audit.c.instance_id == instance_id).order_by(t.audit.c.seq)
        ).all()
    instance = row._asdict()
    plain = {k: v for k, v in instance["data"].items() if k not in ("complainant", "story")}
    instance.update(id=None, audit_head=None, data=(sorted(instance["data"]), plain))
    kept = ("seq", "at", "actor", "role", "trigger", "from_state", "to_state", "outcome",
            "workflow_id", "workflow_version", "format")  # fmt: skip
    return instance, [{k: r._mapping[k] for k in kept} for r in records]


def test_a_fire_stores_the_same_rows_with_and_without_a_statement_listener(
    db_url: str, clock: FrozenClock
) -> None:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()).split(" ")[0].upper())

    with privacy_engine(db_url, clock) as engine:
        direct_id = complaint(engine)
        listened_id = complaint(engine)
        _fire_twice(engine, direct_id)
        assert seen == []
        sql = engine.store.engine  # type: ignore[attr-defined]
        event.listen(sql, "before_cursor_execute", count)
        try:
            _fire_twice(engine, listened_id)
        finally:
            event.remove(sql, "before_cursor_execute", count)
        assert engine.verify_audit().ok
        direct, listened = _stored(engine, direct_id), _stored(engine, listened_id)
        read_direct, read_listened = engine.get(direct_id), engine.get(listened_id)
    assert direct == listened
    assert read_direct.data == read_listened.data
    assert read_direct.data["story"] == "Ana was moved"
    assert read_direct.updated_at == clock.now()
    assert read_direct.updated_at.tzinfo is UTC
    # every statement of the listened fires was seen: BEGIN (SQLite's), the instance read,
    # the update, the position taken and the audit insert
    assert seen.count("UPDATE") >= 4
    assert seen.count("INSERT") >= 2
    assert seen.count("SELECT") >= 2
