"""The current database schema (SQLAlchemy Core): its only declaration the code queries.

The Alembic migrations in ``opcatflow.engine.migrations`` are its history; a test upgrades an
empty database through every one of them, on both backends, and requires Alembic's
``compare_metadata`` to find no difference from these tables (the audit triggers, which it
does not see, are checked by name). Change both together, with a new migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA_REVISION = "0012"

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = sa.JSON().with_variant(JSONB(), "postgresql")

definitions = sa.Table(
    "definitions",
    metadata,
    sa.Column("workflow_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    # The catalogue of deployed versions: every process on the database loads the `deploy`
    # ones, and none starts an instance on a `retired` one.
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("origin", sa.String(16), nullable=False, server_default="file"),
    sa.Column("retired_at", UTCDateTime, nullable=True),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workflow_id", sa.String(64), nullable=False),
    sa.Column("workflow_version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("parent_id", sa.String(36), sa.ForeignKey("instances.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("state_entered_at", UTCDateTime, nullable=False),
    sa.Column("audit_seq", sa.Integer, nullable=False),
    sa.Column("audit_head", sa.String(64), nullable=False),
    sa.ForeignKeyConstraint(
        ["workflow_id", "workflow_version"], ["definitions.workflow_id", "definitions.version"]
    ),
    sa.Index("ix_instances_workflow_state", "workflow_id", "state"),
    sa.Index("ix_instances_parent", "parent_id"),
    # Lists are ordered by (created_at, id) and paged after a (created_at, id) key: this
    # index answers a page without sorting the table. (Id prefixes use the primary key.)
    sa.Index("ix_instances_created", "created_at", "id"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", sa.String(36), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("workflow_id", sa.String(64), nullable=False),
    sa.Column("workflow_version", sa.Integer, nullable=False),
    sa.Column("trigger", sa.String(64), nullable=False),
    sa.Column("from_state", sa.String(64), nullable=True),
    sa.Column("to_state", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("changes", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The record's place in one total order of every audit record, given when its unit of
    # work commits: 1, 2, 3... without gaps, in commit order (see ``audit_position``).
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    # 1: reason in clear, keyed hashes under the database-wide key (older releases);
    # 2: reason sealed, keyed hashes under the instance's audit key; 3: 1 converted by
    # `db encrypt` (reason sealed, hashes still under the database-wide key)
    sa.Column("format", sa.Integer, nullable=False, server_default="1"),
    # 4 on: SHA-256 of the instance row (definition, state, version, data as stored) after
    # the record's change; `audit verify` compares every row with its last record's
    sa.Column("state_hash", sa.String(64), nullable=True),
    sa.UniqueConstraint("instance_id", "seq", name="uq_audit_instance_seq"),
    sa.UniqueConstraint("position", name="uq_audit_position"),
)

AUDIT_COUNTER = 1
READ_LOG_COUNTER = 2  # the read log's positions (migration 0011)

# Row 1: the last position given to an audit record (row 2: to a read-log entry). A
# committing unit of work moves it by the number of records it adds, in one UPDATE just
# before its commit; the row stays locked until that commit, so positions are handed out in
# commit order and a reader never sees position n + 1 before n.
audit_position = sa.Table(
    "audit_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)

# One row per occurrence of a deadline of an instance: what is owed and what became of it.
# No personal value is ever written here (see engine.rows.Obligation).
obligations = sa.Table(
    "obligations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", sa.String(36), sa.ForeignKey("instances.id"), nullable=False),
    sa.Column("deadline", sa.String(64), nullable=False),
    sa.Column("occurrence", sa.Integer, nullable=False),
    sa.Column("scope", sa.String(1000), nullable=False),  # states, space-separated, or 'instance'
    sa.Column("anchor", sa.String(64), nullable=True),  # ISO 8601 value it counts from
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("last_day", sa.Date, nullable=True),  # in the NPM's calendar
    # pending | due | met | waived | extended | cancelled | paused
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("paused_at", UTCDateTime, nullable=True),
    sa.Column("met_at", UTCDateTime, nullable=True),
    sa.Column("met_by", sa.String(200), nullable=True),
    sa.Column("days_late", sa.Integer, nullable=True),
    sa.Column("note", sa.String(200), nullable=True),  # fixed words, never a person's text
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("instance_id", "deadline", "occurrence", name="uq_obligations_key"),
    # Listings read one status at a time in due order (the overdue page: status 'due').
    sa.Index("ix_obligations_status_due", "status", "due_at", "id"),
)

timers = sa.Table(
    "timers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", sa.String(36), sa.ForeignKey("instances.id"), nullable=False),
    sa.Column("state", sa.String(64), nullable=False),  # the state that armed it
    sa.Column("deadline", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # reminder | due
    sa.Column("occurrence", sa.Integer, nullable=False, server_default="1"),  # of an `every`
    sa.Column("due_at", UTCDateTime, nullable=False),
    # pending | paused | fired | refused | failed | cancelled
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("paused_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("note", sa.Text, nullable=True),  # refusal reason or last error
    sa.Column("payload", Json, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column(
        "obligation_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True
    ),  # the obligation this timer wakes the scheduler for
    # The sweep reads only (status='pending', due_at <= now): this index answers it without
    # touching the pending timers that are not due.
    sa.Index("ix_timers_status_due", "status", "due_at"),
    sa.Index("ix_timers_instance", "instance_id", "status"),
    sa.Index("ix_timers_obligation", "obligation_id", "status"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", sa.String(36), nullable=True),
    sa.Column("event", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # who holds the row while it is being sent; next_attempt_at is then the lease's end
    sa.Column("claim_token", sa.String(32), nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),
    sa.Index("ix_outbox_instance", "instance_id"),  # an erasure finds an instance's messages
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # public: shown in lists, part of the key
    sa.Column("secret_hash", sa.String(64), nullable=False),  # SHA-256 of the secret part
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("roles", Json, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

# The first response to a POST that carried an Idempotency-Key, replayed to its retries.
idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("api_key_id", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 of the request body
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),  # the JSON body, as sent
    sa.Column("headers", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_idempotency_expires", "expires_at"),
)

# One data key per owner (an instance, or the store's own records), wrapped by a
# key-encryption key that is never stored here.
data_keys = sa.Table(
    "data_keys",
    metadata,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("kek_id", sa.String(64), nullable=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("erased_at", UTCDateTime, nullable=True),  # a tombstone: the key is destroyed
    sa.Index("ix_data_keys_kek", "kek_id"),
)

# The blind index of each instance's data subject (see engine/privacy.py).
subjects = sa.Table(
    "subjects",
    metadata,
    sa.Column("blind_index", sa.String(64), primary_key=True),
    sa.Column("instance_id", sa.String(36), primary_key=True),
    sa.Index("ix_subjects_instance", "instance_id"),
)

# Every read of personal values: append-only (database triggers refuse UPDATE and DELETE).
read_log = sa.Table(
    "read_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # cli, http, api
    sa.Column("what", sa.String(32), nullable=False),  # show, list, history, audit-export...
    sa.Column("instance_id", sa.String(36), nullable=True),  # None: every instance
    sa.Column("fields", sa.Text, nullable=False),  # JSON list of the personal fields shown
    sa.Column("reason", sa.Text, nullable=True),  # sealed under the store's own key
    # 1, 2, 3... in commit order (counter row READ_LOG_COUNTER); checkpoints sign a root
    # over them as over the audit trail's positions. Null only before migration 0011 ran.
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    sa.Index("ix_read_log_instance", "instance_id", "id"),
    sa.Index("ix_read_log_position", "position", unique=True),
)

# Instances whose erasure by retention is suspended.
legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("instance_id", sa.String(36), primary_key=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("held_at", UTCDateTime, nullable=False),
)

# The report projection: the non-personal values reports group and count on, one row per
# value (a list's item, a records entry's sub-field), replaced with every write of the
# instance, so a report scans this table in key order and decodes no instance's JSON.
report_facts = sa.Table(
    "report_facts",
    metadata,
    sa.Column("workflow_id", sa.String(64), nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("field", sa.String(130), nullable=False),
    sa.Column("entry", sa.Text, nullable=False),  # a records key may be any text
    sa.Column("value", sa.Text, nullable=False),
    # PostgreSQL: the value rides in the key's index, so a report's scan reads the index
    # alone (an index-only scan) instead of fetching each row from the heap
    sa.PrimaryKeyConstraint(
        "workflow_id", "instance_id", "field", "entry", postgresql_include=["value"]
    ),
    # SQLite: the rows live in the key's b-tree, so a report's scan reads them in order
    # instead of looking each one up by rowid
    sqlite_with_rowid=False,
)

meta = sa.Table(
    "opcatflow_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
