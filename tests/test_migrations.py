"""The migrations build exactly the schema ``engine/sql/tables.py`` declares (the only
declaration of the current schema the code queries), on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from opcatflow.engine.errors import StoreError
from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.schemalock import MIGRATIONS


@pytest.fixture
def store(db_url: str) -> Iterator[SQLAlchemyStore]:
    opened = SQLAlchemyStore(db_url)
    yield opened
    opened.close()


def upgrade_one_by_one(store: SQLAlchemyStore) -> list[str]:
    """Upgrade an empty database through every migration, oldest first; returns the
    revisions passed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    revisions = [s.revision for s in ScriptDirectory.from_config(config).walk_revisions()]
    revisions.reverse()
    for revision in revisions:
        with store.connect(write=True) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    return revisions


def test_every_migration_applied_in_turn_builds_the_declared_schema(
    store: SQLAlchemyStore,
) -> None:
    revisions = upgrade_one_by_one(store)
    assert revisions[-1] == t.SCHEMA_REVISION == store.current_revision()
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, t.metadata) == []


def test_the_migrations_make_the_audit_trail_append_only(store: SQLAlchemyStore) -> None:
    # Triggers are outside what compare_metadata sees: checked here by name.
    upgrade_one_by_one(store)
    if store.dialect == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit'::regclass"
        expected = {"audit_append_only", "audit_no_truncate"}
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'"
        expected = {"audit_append_only_update", "audit_append_only_delete"}
    with store.connect() as conn:
        found = {row[0] for row in conn.execute(sa.text(query))}
    assert found == expected


def test_0011_numbers_the_read_log_written_before_it_and_keeps_it_append_only(
    store: SQLAlchemyStore,
) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.connect(write=True) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0010")
    insert = sa.text(
        "INSERT INTO read_log (at, actor, role, channel, what, instance_id, fields) "
        "VALUES (:at, :actor, 'clerk', 'cli', 'show', NULL, '[\"name\"]')"
    )
    with store.connect(write=True) as conn:
        for actor in ("a", "b", "c"):
            conn.execute(insert, {"at": "2026-03-02 09:00:00+00:00", "actor": actor})
    with store.connect(write=True) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0011")
    with store.connect() as conn:
        numbered = conn.execute(sa.text("SELECT actor, position FROM read_log ORDER BY id"))
        counter = conn.execute(sa.text("SELECT last FROM audit_position WHERE id = 2"))
        assert [tuple(row) for row in numbered] == [("a", 1), ("b", 2), ("c", 3)]
        assert counter.scalar_one() == 3
    refused = (sa.exc.DBAPIError, StoreError)  # PostgreSQL's error comes through the store
    with pytest.raises(refused, match="append-only"), store.connect(write=True) as conn:
        conn.execute(sa.text("UPDATE read_log SET actor = 'x'"))
