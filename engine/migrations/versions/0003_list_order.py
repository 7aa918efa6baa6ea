"""Instance lists in (created_at, id) order from an index: keyset paging (issue 16).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_instances_created", "instances", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_instances_created", table_name="instances")
