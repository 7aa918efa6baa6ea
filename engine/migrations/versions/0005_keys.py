"""Keys: a wrapped data key per instance (``data_keys``), and the audit record format.

Personal values are sealed with a data key per instance, wrapped by a key-encryption key kept
outside the database; ``audit.format`` tells records written before (1: reason in clear,
keyed hashes under the database-wide key) from those after (2: reason sealed, keyed hashes
under the instance's own audit key) and those ``opcatflow db encrypt`` converted (3).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("kek_id", sa.String(64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_index("ix_data_keys_kek", "data_keys", ["kek_id"])
    with op.batch_alter_table("audit") as batch:  # plain ALTER on both backends: no copy
        batch.add_column(sa.Column("format", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("format")
    op.drop_index("ix_data_keys_kek", "data_keys")
    op.drop_table("data_keys")
