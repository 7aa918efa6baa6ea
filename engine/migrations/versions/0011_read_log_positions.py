"""Read-log positions: each entry numbered 1, 2, 3... in commit order, so that checkpoints
sign a root over the read log as over the audit trail (a deleted or altered entry then fails
``audit verify --checkpoint``).

Counter row 2 of ``audit_position`` numbers them (row 1 numbers audit records). Entries
written before this revision are numbered in id order; the append-only triggers are lifted
for that one UPDATE and put back.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer, "sqlite")
NUMBER = (
    "UPDATE read_log SET position = "
    "(SELECT count(*) FROM read_log AS earlier WHERE earlier.id <= read_log.id)"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER read_log_append_only_{name} BEFORE {event} ON read_log BEGIN SELECT "
    "RAISE(ABORT, 'the read log is append-only ({event} refused)'); END"
)


def upgrade() -> None:
    with op.batch_alter_table("read_log") as batch:  # plain ALTER on both backends: no copy
        batch.add_column(sa.Column("position", Position, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE read_log DISABLE TRIGGER read_log_append_only")
        op.execute(NUMBER)
        op.execute("ALTER TABLE read_log ENABLE TRIGGER read_log_append_only")
    else:
        op.execute("DROP TRIGGER read_log_append_only_update")
        op.execute(NUMBER)
        op.execute(SQLITE_TRIGGER.format(name="update", event="UPDATE"))
    op.create_index("ix_read_log_position", "read_log", ["position"], unique=True)
    op.execute("INSERT INTO audit_position (id, last) SELECT 2, count(*) FROM read_log")


def downgrade() -> None:
    op.execute("DELETE FROM audit_position WHERE id = 2")
    op.drop_index("ix_read_log_position", "read_log")
    with op.batch_alter_table("read_log") as batch:
        batch.drop_column("position")
