"""Privacy: erased data keys (tombstones), the subject index and legal holds.

An erased owner keeps its ``data_keys`` row with the wrapped key destroyed (empty) and
``erased_at`` set: a tombstone, so no path makes new keys for it. ``subjects`` holds the blind
index of each instance's data subject (a keyed hash of the normalised subject id, never the id
itself); ``legal_holds`` the instances whose erasure by retention is suspended; an index on
``outbox.instance_id`` lets an erasure find the instance's messages.

Revision ID: 0010
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


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


def downgrade() -> None:
    op.drop_index("ix_outbox_instance", "outbox")
    op.drop_table("legal_holds")
    op.drop_index("ix_subjects_instance", "subjects")
    op.drop_table("subjects")
    with op.batch_alter_table("data_keys") as batch:
        batch.drop_column("erased_at")
