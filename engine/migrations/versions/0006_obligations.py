"""Obligations: one row per deadline occurrence, and timers pointing to theirs.

Timers armed by an older release become obligations: an open due timer (pending or paused)
is an obligation in the same status, and a due date already processed while the instance is
still in the state that armed it (the deadline was never met) is an obligation ``due``, so
it is listed as overdue again. Their reminders and due timers are linked to them. The last
day of these carried-over rows is left empty: the migration does not know the NPM's time
zone, so readers compute it from ``due_at`` in the NPM's calendar, and the next change of the
row stores it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)

# Open due timers, and processed ones of deadlines never met (the instance is still in the
# state that armed them, since before they were armed, and nothing newer is open for them).
CARRY_OVER = """
INSERT INTO obligations (instance_id, deadline, occurrence, scope, anchor, due_at,
                         last_day, status, paused_at, created_at, updated_at)
SELECT t.instance_id, t.deadline, t.occurrence, t.state, NULL, t.due_at, NULL,
       CASE WHEN t.status IN ('fired', 'refused') THEN 'due' ELSE t.status END,
       t.paused_at, t.created_at, COALESCE(t.closed_at, t.created_at)
FROM timers t JOIN instances i ON i.id = t.instance_id
WHERE t.kind = 'due'
  AND (t.status IN ('pending', 'paused')
       OR (t.status IN ('fired', 'refused')
           AND i.state = t.state
           AND t.created_at >= i.state_entered_at
           AND NOT EXISTS (
               SELECT 1 FROM timers o
               WHERE o.instance_id = t.instance_id AND o.deadline = t.deadline
                 AND o.kind = 'due' AND o.id > t.id)))
"""

LINK = """
UPDATE timers SET obligation_id = (
    SELECT o.id FROM obligations o
    WHERE o.instance_id = timers.instance_id AND o.deadline = timers.deadline
      AND o.occurrence = timers.occurrence)
WHERE status IN ('pending', 'paused')
"""


def upgrade() -> None:
    op.create_table(
        "obligations",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("instance_id", sa.String(36), sa.ForeignKey("instances.id"), nullable=False),
        sa.Column("deadline", sa.String(64), nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("scope", sa.String(1000), nullable=False),
        sa.Column("anchor", sa.String(64), nullable=True),
        sa.Column("due_at", When, nullable=False),
        sa.Column("last_day", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paused_at", When, nullable=True),
        sa.Column("met_at", When, nullable=True),
        sa.Column("met_by", sa.String(200), nullable=True),
        sa.Column("days_late", sa.Integer, nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.UniqueConstraint("instance_id", "deadline", "occurrence", name="uq_obligations_key"),
    )
    op.create_index("ix_obligations_status_due", "obligations", ["status", "due_at", "id"])
    op.add_column("timers", sa.Column("obligation_id", BigId, nullable=True))
    op.create_index("ix_timers_obligation", "timers", ["obligation_id", "status"])
    op.execute(CARRY_OVER)
    op.execute(LINK)


def downgrade() -> None:
    op.drop_index("ix_timers_obligation", table_name="timers")
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("obligation_id")
    op.drop_index("ix_obligations_status_due", table_name="obligations")
    op.drop_table("obligations")
