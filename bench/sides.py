"""The two things measured side by side: the engine, and a floor of bare SQLAlchemy Core.

Both expose ``start() -> id`` and ``fire(id, trigger, version)``, one transaction each. The
floor writes the same rows (same tables, created by the engine's own migrations in a separate
file or schema) with the fewest statements that can do it: INSERT instance + INSERT audit to
start; UPDATE instance with a version check + INSERT audit to fire, the record taking its
position from the counter row as the engine's do (one UPDATE ... RETURNING per transaction).
It reads nothing, hashes nothing and validates nothing: it is what the database and
SQLAlchemy Core cost on their own. The reading floor (``floor-read``) also reads the row
first, as the engine does (``SELECT``; ``SELECT ... FOR UPDATE`` on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy import event

from bench.common import ACTOR, DATA, MOVES, ROLE, WORKFLOW, WORKFLOW_ID, bench_logger
from opcatflow.engine import Engine, Registry, SQLAlchemyStore
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.store import normalise_url


class Side(Protocol):
    name: str

    def start(self) -> str: ...

    def fire(self, instance_id: str, trigger: str, version: int) -> None: ...

    def close(self) -> None: ...


class EngineSide:
    """``Engine.start`` / ``Engine.fire`` on the benchmark workflow."""

    name = "engine"

    def __init__(self, url: str, synchronous: str = "FULL", log: str = "off") -> None:
        self.engine = Engine.open(
            url, [WORKFLOW], Registry(), synchronous=synchronous, logger=bench_logger(log)
        )

    def start(self) -> str:
        return self.engine.start(WORKFLOW_ID, actor=ACTOR, role=ROLE, data=DATA).id

    def fire(self, instance_id: str, trigger: str, version: int) -> None:
        self.engine.fire(instance_id, trigger, actor=ACTOR, role=ROLE)

    def close(self) -> None:
        self.engine.close()


def _sqlite_recipe(engine: sa.Engine, synchronous: str) -> None:
    # The same connection setup the engine's store applies: SQLAlchemy's documented recipe
    # (pysqlite must not defer BEGIN), WAL, the same pragmas, BEGIN IMMEDIATE for writers.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class FloorSide:
    """The same writes through bare SQLAlchemy Core: the rate the engine is compared with."""

    name = "floor"

    def __init__(self, url: str, synchronous: str = "FULL", *, reads: bool = False) -> None:
        self.reads = reads
        # The engine's migrations create the tables (so indexes, constraints and triggers are
        # identical); nothing of the engine runs on the measured path.
        schema = SQLAlchemyStore(url, synchronous=synchronous)
        try:
            schema.ensure_schema()
        finally:
            schema.close()
        self.db = sa.create_engine(normalise_url(url))
        if self.db.dialect.name == "sqlite":
            _sqlite_recipe(self.db, synchronous.upper())
        c = t.instances.c
        self._update = t.instances.update().where(
            c.id == sa.bindparam("b_id"), c.version == sa.bindparam("b_version")
        )
        self._insert_instance = t.instances.insert()
        self._insert_audit = t.audit.insert()
        p = t.audit_position.c
        self._position = (
            t.audit_position.update().where(p.id == 1).values(last=p.last + 1).returning(p.last)
        )
        select = sa.select(t.instances).where(c.id == sa.bindparam("b_id"))
        self._read = select.with_for_update() if self.db.dialect.name == "postgresql" else select
        with self.db.begin() as conn:
            known = conn.execute(
                sa.select(t.definitions.c.version).where(
                    t.definitions.c.workflow_id == WORKFLOW_ID, t.definitions.c.version == 1
                )
            ).first()
            if known is None:
                conn.execute(
                    t.definitions.insert(),
                    {
                        "workflow_id": WORKFLOW_ID,
                        "version": 1,
                        "fingerprint": "0" * 64,
                        "title": "floor",
                        "source": "",
                        "registered_at": datetime.now(UTC),
                    },
                )

    def _audit(
        self,
        conn: sa.Connection,
        instance_id: str,
        seq: int,
        now: datetime,
        trigger: str,
        from_state: str | None,
        to_state: str,
        outcome: str,
    ) -> dict[str, Any]:
        return {
            "instance_id": instance_id,
            "seq": seq,
            "at": now,
            "actor": ACTOR,
            "role": ROLE,
            "workflow_id": WORKFLOW_ID,
            "workflow_version": 1,
            "trigger": trigger,
            "from_state": from_state,
            "to_state": to_state,
            "outcome": outcome,
            "reason": None,
            "changes": "{}",
            "prev_hash": f"{seq - 1:064x}",
            "hash": f"{seq:064x}",
            "position": conn.execute(self._position).scalar_one(),
        }

    def start(self) -> str:
        instance_id = str(uuid4())
        now = datetime.now(UTC)
        with self.db.begin() as conn:
            conn.execute(
                self._insert_instance,
                {
                    "id": instance_id,
                    "workflow_id": WORKFLOW_ID,
                    "workflow_version": 1,
                    "state": "a",
                    "data": DATA,
                    "version": 1,
                    "parent_id": None,
                    "created_at": now,
                    "updated_at": now,
                    "state_entered_at": now,
                    "audit_seq": 1,
                    "audit_head": f"{1:064x}",
                },
            )
            conn.execute(
                self._insert_audit,
                self._audit(conn, instance_id, 1, now, "start", None, "a", "started"),
            )
        return instance_id

    def fire(self, instance_id: str, trigger: str, version: int) -> None:
        # Applied transitions only, so the audit seq of an instance equals its version.
        from_state, to_state = MOVES[trigger]
        now = datetime.now(UTC)
        seq = version + 1
        with self.db.begin() as conn:
            if self.reads:
                conn.execute(self._read, {"b_id": instance_id}).one()
            result = conn.execute(
                self._update,
                {
                    "b_id": instance_id,
                    "b_version": version,
                    "state": to_state,
                    "data": DATA,
                    "version": version + 1,
                    "updated_at": now,
                    "state_entered_at": now,
                    "audit_seq": seq,
                    "audit_head": f"{seq:064x}",
                },
            )
            if result.rowcount != 1:
                raise RuntimeError(f"floor: instance {instance_id} is not at version {version}")
            conn.execute(
                self._insert_audit,
                self._audit(conn, instance_id, seq, now, trigger, from_state, to_state, "applied"),
            )

    def close(self) -> None:
        self.db.dispose()


def open_side(kind: str, url: str, synchronous: str = "FULL", log: str = "off") -> Side:
    if kind == "engine":
        return EngineSide(url, synchronous, log)
    return FloorSide(url, synchronous, reads=kind == "floor-read")
