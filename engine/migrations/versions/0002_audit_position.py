"""Audit position: every audit record gets its place in one total order of all records,
given in commit order (column ``audit.position``, unique), and the counter that hands the
places out (table ``audit_position``, one row).

Records already stored are numbered in the order of their ``id``. The audit table refuses
UPDATE, so its append-only triggers are set aside for the numbering and put back.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# Numbered in id order; UPDATE ... FROM works on PostgreSQL and on SQLite >= 3.33.
NUMBER_RECORDS = """
UPDATE audit SET "position" = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit) AS numbered
WHERE audit.id = numbered.id
"""
SQLITE_EVENTS = ("UPDATE", "DELETE")


def _sqlite_triggers(create: bool) -> None:
    for event in SQLITE_EVENTS:
        name = f"audit_append_only_{event.lower()}"
        if create:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON audit "
                f"BEGIN SELECT RAISE(ABORT, 'the audit table is append-only ({event} refused)'); "
                "END"
            )
        else:
            op.execute(f"DROP TRIGGER {name}")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_position",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last", Position, nullable=False),
    )
    op.execute("INSERT INTO audit_position (id, last) SELECT 1, count(*) FROM audit")
    if postgresql:
        op.add_column("audit", sa.Column("position", Position, nullable=True))
        op.execute("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        op.execute(NUMBER_RECORDS)
        op.execute("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
        op.alter_column("audit", "position", nullable=False)
        op.create_unique_constraint("uq_audit_position", "audit", ["position"])
        return
    # SQLite cannot make a column NOT NULL in place: the table is rebuilt (its triggers go
    # with the old table and are created again).
    _sqlite_triggers(create=False)
    op.add_column("audit", sa.Column("position", Position, nullable=True))
    op.execute(NUMBER_RECORDS)
    with op.batch_alter_table("audit", recreate="always") as batch:
        batch.alter_column("position", existing_type=Position, nullable=False)
        batch.create_unique_constraint("uq_audit_position", ["position"])
    _sqlite_triggers(create=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_audit_position", "audit")
        op.drop_column("audit", "position")
    else:
        _sqlite_triggers(create=False)
        with op.batch_alter_table("audit", recreate="always") as batch:
            batch.drop_constraint("uq_audit_position", type_="unique")
            batch.drop_column("position")
        _sqlite_triggers(create=True)
    op.drop_table("audit_position")
