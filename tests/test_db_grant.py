"""``db grant ROLE`` on PostgreSQL: the application role runs the engine but cannot disable
the audit triggers, truncate or alter a table (each test makes a uniquely named role and
drops it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from conftest import PG_URL, new_pg_schema
from helpers import EXAMPLE_DIR, make_registry
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock

REFUSALS = [
    "ALTER TABLE audit DISABLE TRIGGER audit_append_only",
    "ALTER TABLE audit DISABLE TRIGGER USER",
    "TRUNCATE audit",
    "TRUNCATE audit, instances CASCADE",
    "ALTER TABLE instances ADD COLUMN x integer",
    "DROP TABLE audit",
    "DELETE FROM audit",
    "UPDATE audit SET actor = 'mallory'",
    "CREATE TABLE scratch (x integer)",
]


@pytest.fixture
def granted(pg_admin: sa.Engine, clock: FrozenClock) -> Iterator[tuple[str, str]]:
    """(owner URL, application role URL) on a fresh schema with one case in it."""
    schema, owner_url = new_pg_schema(pg_admin)
    role = "opcatflow_app_" + uuid.uuid4().hex[:10]
    try:
        with Engine.open(owner_url, [EXAMPLE_DIR], make_registry(), clock=clock) as engine:
            engine.start("example", actor="cleo", role="clerk", data={"title": "T", "name": "A"})
        result = CliRunner().invoke(app, ["--db", owner_url, "db", "grant", role])
        assert result.exit_code == 0, result.output
        assert f"role {role} created and granted" in result.stdout
        base, _, query = owner_url.partition("?")
        user_url = base.replace("://root@", f"://{role}@", 1) + "?" + query
        yield owner_url, user_url
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))


def test_the_application_role_runs_the_engine_and_cannot_rewrite(
    granted: tuple[str, str], clock: FrozenClock
) -> None:
    assert PG_URL.startswith("postgresql://root@")
    _, user_url = granted
    with Engine.open(user_url, [EXAMPLE_DIR], make_registry(), clock=clock) as engine:
        case = engine.start("example", actor="cleo", role="clerk", data={"title": "U", "score": 6})
        engine.fire(case.id, "submit", actor="cleo", role="clerk")
        assert engine.verify_audit().ok
        assert engine.audit_root()[0] >= 2
    user = sa.create_engine(user_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        for statement in REFUSALS:
            with pytest.raises(sa.exc.ProgrammingError) as caught, user.begin() as conn:
                conn.exec_driver_sql(statement)
            # refused for want of the right, not by a trigger the owner could disable
            assert type(caught.value.orig).__name__ == "InsufficientPrivilege", statement
    finally:
        user.dispose()


def test_grant_refuses_a_role_that_owns_the_tables(granted: tuple[str, str]) -> None:
    owner_url, _ = granted
    result = CliRunner().invoke(app, ["--db", owner_url, "db", "grant", "root"])
    assert result.exit_code == 2
    assert "superuser" in result.stderr or "owns" in result.stderr
