"""The catalogue of deployed definition versions: each stored definition says whether it may
start instances (``status``: active or retired, with ``retired_at``) and how it reached the
database (``origin``: loaded from a process's files, or ``workflows deploy``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Every copy stored so far was loaded from files and starts instances.
    op.add_column(
        "definitions",
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    )
    op.add_column(
        "definitions",
        sa.Column("origin", sa.String(16), nullable=False, server_default="file"),
    )
    op.add_column("definitions", sa.Column("retired_at", When, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("definitions") as batch:
        batch.drop_column("retired_at")
        batch.drop_column("origin")
        batch.drop_column("status")
