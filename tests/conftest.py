"""Shared fixtures: a real SQLite file and a real PostgreSQL schema per test.

Every store-touching test takes ``db_url`` and so runs on both backends; the store contract
suite takes ``store`` and runs on all three stores (memory, SQLite, PostgreSQL). PostgreSQL is at
``OPCATFLOW_TEST_PG`` (default ``postgresql://root@127.0.0.1:5432/test``); each test gets a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.ports import Store
from opcatflow.workflows import BUNDLED, registry

PG_URL = os.environ.get("OPCATFLOW_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
HERE = Path(__file__).parent
DEFINITIONS = HERE / "definitions"


def pg_admin_url() -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as err:  # pragma: no cover - CI starts PostgreSQL
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {err}")
    yield engine
    engine.dispose()


def new_pg_schema(admin: sa.Engine) -> tuple[str, str]:
    """Create an empty schema; returns (schema, URL whose search_path is that schema)."""
    schema = "t_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    return schema, f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(autouse=True)
def key_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps its key-encryption keys in a file of its own (never the user's
    ``~/.config/opcatflow/keys``); commands run as subprocesses inherit the variable."""
    path = tmp_path_factory.mktemp("keys") / "keys"
    monkeypatch.setenv("OPCATFLOW_KEY_FILE", str(path))
    monkeypatch.delenv("OPCATFLOW_KEK", raising=False)
    return path


@pytest.fixture(autouse=True)
def unconfigured_structlog() -> Iterator[None]:
    """Every test ends with structlog unconfigured: ``structlog.testing.capture_logs`` leaves it
    marked as configured, and an engine built later in the same process would then print every
    event on standard output (which test runs after which depends on the scheduler of workers)."""
    yield
    structlog.reset_defaults()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "opcatflow.db")
        return
    admin = request.getfixturevalue("pg_admin")
    schema, url = new_pg_schema(admin)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each kind: in memory, on a SQLite file, in a fresh PostgreSQL
    schema. The store contract suite (tests/test_store_contract_*.py) runs on all three."""
    if request.param == "memory":
        yield MemoryStore()
        return
    from opcatflow.engine.sql import SQLAlchemyStore

    if request.param == "sqlite":
        url = str(tmp_path / "contract.db")
        sql = SQLAlchemyStore(url)
        sql.ensure_schema()
        yield sql
        sql.close()
        return
    admin = request.getfixturevalue("pg_admin")
    schema, url = new_pg_schema(admin)
    sql = SQLAlchemyStore(url)
    try:
        sql.ensure_schema()
        yield sql
    finally:
        sql.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    """An engine over the bundled workflows, on an empty database."""
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as eng:
        yield eng


COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-01",
    "persons": [{"ref": "P1", "name": "Ana Pereira"}],
    "summary": "Beaten in cell 14 by two officers on 27 February.",
}
