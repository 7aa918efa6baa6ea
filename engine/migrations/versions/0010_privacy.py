"""Privacy: erased data keys (tombstones), the subject index, legal holds and the read log.

An erased owner keeps its ``data_keys`` row with the wrapped key destroyed (empty) and
``erased_at`` set: a tombstone, so no path makes new keys for it. ``subjects`` holds the blind
index of each instance's data subject (a keyed hash of the normalised subject id, never the id
itself); ``legal_holds`` the instances whose erasure by retention is suspended; an index on
``outbox.instance_id`` lets an erasure find the instance's messages; ``read_log`` (append-only,
like ``audit``) records every read of personal values.

Revision ID: 0010
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

APPEND_ONLY_PG = """
CREATE FUNCTION opcatflow_read_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the read log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER read_log_append_only BEFORE UPDATE OR DELETE ON read_log
    FOR EACH ROW EXECUTE FUNCTION opcatflow_read_log_append_only();
"""


def upgrade() -> None:
    with op.batch_alter_table("data_keys") as batch:  # plain ALTER on both backends: no copy
        batch.add_column(sa.Column("erased_at", When, nullable=True))
    op.create_table(
        "subjects",
        sa.Column("blind_index", sa.String(64), primary_key=True),
        sa.Column("instance_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_subjects_instance", "subjects", ["instance_id"])
    op.create_table(
        "legal_holds",
        sa.Column("instance_id", sa.String(36), primary_key=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("held_at", When, nullable=False),
    )
    op.create_index("ix_outbox_instance", "outbox", ["instance_id"])
    op.create_table(
        "read_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", When, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("what", sa.String(32), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=True),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_read_log_instance", "read_log", ["instance_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_PG)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER read_log_append_only_{event.lower()} BEFORE {event} ON "
                f"read_log BEGIN SELECT RAISE(ABORT, 'the read log is append-only ({event} "
                "refused)'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER read_log_append_only ON read_log")
        op.execute("DROP FUNCTION opcatflow_read_log_append_only()")
    op.drop_index("ix_read_log_instance", "read_log")
    op.drop_table("read_log")
    op.drop_index("ix_outbox_instance", "outbox")
    op.drop_table("legal_holds")
    op.drop_index("ix_subjects_instance", "subjects")
    op.drop_table("subjects")
    with op.batch_alter_table("data_keys") as batch:
        batch.drop_column("erased_at")
