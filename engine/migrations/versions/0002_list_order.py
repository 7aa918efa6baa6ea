"""Instance lists in (created_at, id) order from an index: keyset paging (issue 16).

Revision ID: 0002_list_order
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002_list_order"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_instances_created", "instances", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_instances_created", table_name="instances")
