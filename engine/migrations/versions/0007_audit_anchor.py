"""Anchored audit trail: each record carries the hash of its instance row after the change
(format 4; older records keep verifying without it), and PostgreSQL refuses ``TRUNCATE`` on
the audit table (row triggers do not see a truncation).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NO_TRUNCATE_PG = """
CREATE FUNCTION opcatflow_audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit table is append-only (TRUNCATE refused)';
END $$;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION opcatflow_audit_no_truncate();
"""


def upgrade() -> None:
    # A new nullable column: SQLite adds it in place (no table rebuild, triggers kept).
    op.add_column("audit", sa.Column("state_hash", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NO_TRUNCATE_PG)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_no_truncate ON audit")
        op.execute("DROP FUNCTION opcatflow_audit_no_truncate()")
    # SQLite 3.35+ drops a column in place (the append-only triggers stay).
    op.drop_column("audit", "state_hash")
