"""The report projection: ``report_facts`` holds, per instance, the non-personal values
reports group and count on (one row per value), so a report never decodes instance JSON.

The rows are built by the engine, which knows the definitions and holds the keys (a records
field with a personal sub-field is stored sealed whole): this revision creates the table
empty and records no projection digest, so the first engine that opens the database with
its catalogue registered (``opcatflow serve``, ``start``, ``fire``, ``db upgrade`` and every
writing command) fills it, in pages, before it returns; ``opcatflow report rebuild`` does
the same on demand.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_facts",
        sa.Column("workflow_id", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("field", sa.String(130), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        # PostgreSQL: an index-only scan reads the values from the key's index
        sa.PrimaryKeyConstraint(
            "workflow_id", "instance_id", "field", "entry", postgresql_include=["value"]
        ),
        sqlite_with_rowid=False,  # rows kept in key order: a report's scan reads them in turn
    )
    op.execute("DELETE FROM opcatflow_meta WHERE key = 'report_projection'")


def downgrade() -> None:
    op.drop_table("report_facts")
    op.execute("DELETE FROM opcatflow_meta WHERE key = 'report_projection'")
