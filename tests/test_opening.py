"""Opening a database is safe under concurrency: threads of one process opening engines on new
files or on one file, and processes starting together on one new database. The schema is
created once; whoever finds it being created waits, within a bound, and then uses it."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import new_pg_schema
from helpers import EXAMPLE_DIR, make_registry, open_at_once, set_starting_gate

from opcatflow.engine import Engine, SchemaLocked, SQLAlchemyStore
from opcatflow.engine.sql.schemalock import schema_lock, upgrade_to_head
from opcatflow.engine.sql.store import normalise_url
from opcatflow.engine.sql.tables import SCHEMA_REVISION

ROUNDS = 20
THREADS = 8
PROCESSES = 4


def revisions(url: str) -> list[str]:
    """Every row of ``alembic_version``: one, at head, when the schema was created once."""
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def open_together(urls: list[str]) -> None:
    """Open one engine per URL, each in its own thread, all released at the same moment."""
    gate = threading.Barrier(len(urls))

    def open_one(url: str) -> None:
        gate.wait(timeout=60)
        Engine.open(url, [EXAMPLE_DIR], make_registry()).close()

    with ThreadPoolExecutor(len(urls)) as pool:
        list(pool.map(open_one, urls))  # re-raises the first thread's error


def test_threads_open_engines_on_new_sqlite_files_and_on_one_file(tmp_path: Path) -> None:
    # Before the fix: KeyError('script'), "table definitions already exists", and in some
    # runs a segmentation fault (Alembic's context is process-global).
    for round_ in range(ROUNDS):
        own = [str(tmp_path / f"{round_}-{i}.db") for i in range(THREADS)]
        shared = str(tmp_path / f"{round_}-shared.db")
        open_together(own)
        open_together([shared] * THREADS)
        assert [revisions(url) for url in [*own, shared]] == [[SCHEMA_REVISION]] * (THREADS + 1)


def test_threads_open_engines_on_new_postgresql_schemas_and_on_one_schema(
    pg_admin: sa.Engine,
) -> None:
    schemas, urls = zip(*(new_pg_schema(pg_admin) for _ in range(THREADS + 1)), strict=True)
    try:
        open_together(list(urls[:THREADS]))
        open_together([urls[THREADS]] * THREADS)
        assert [revisions(url) for url in urls] == [[SCHEMA_REVISION]] * (THREADS + 1)
    finally:
        with pg_admin.connect() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.mark.slow
def test_processes_starting_together_create_one_schema(pg_admin: sa.Engine, tmp_path: Path) -> None:
    # Before the fix, on PostgreSQL: UniqueViolation on the type alembic_version, then on the
    # audit key and the definition rows.
    schema, pg_url = new_pg_schema(pg_admin)
    sqlite_url = str(tmp_path / "shared.db")
    spawn = multiprocessing.get_context("spawn")
    gate = spawn.Barrier(PROCESSES)
    try:
        with ProcessPoolExecutor(
            PROCESSES, mp_context=spawn, initializer=set_starting_gate, initargs=(gate,)
        ) as pool:
            for url in (pg_url, sqlite_url):
                futures = [pool.submit(open_at_once, url) for _ in range(PROCESSES)]
                assert [f.result(timeout=120) for f in futures] == [SCHEMA_REVISION] * PROCESSES
                assert revisions(url) == [SCHEMA_REVISION]
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def test_an_open_waits_while_another_connection_creates_the_schema(db_url: str) -> None:
    creator = SQLAlchemyStore(db_url)
    try:
        with ThreadPoolExecutor(1) as pool:
            with schema_lock(creator.engine, None, 10) as (conn, deadline):
                opening = pool.submit(Engine.open, db_url, [EXAMPLE_DIR], make_registry())
                with pytest.raises(FutureTimeout):
                    opening.result(timeout=0.5)  # neither an error nor a second schema: waiting
                upgrade_to_head(conn, deadline, "creator")
            with opening.result(timeout=30) as engine:
                assert engine.store.current_revision() == SCHEMA_REVISION
        assert revisions(db_url) == [SCHEMA_REVISION]
    finally:
        creator.close()


@pytest.mark.parametrize("step", ["ensure_schema", "upgrade"])
def test_a_schema_step_that_outwaits_its_bound_fails_naming_the_database(
    db_url: str, step: str
) -> None:
    url = db_url.replace("root@", "root:hunter2@", 1)  # trust auth: the password goes unused
    holder, store = SQLAlchemyStore(url), SQLAlchemyStore(url, schema_lock_timeout=0.2)
    try:
        with schema_lock(holder.engine, None, 10), pytest.raises(SchemaLocked) as caught:
            getattr(store, step)()
        getattr(store, step)()  # nothing was left half-done or held: the schema is created now
        assert store.current_revision() == SCHEMA_REVISION
    finally:
        holder.close()
        store.close()
    sqlite = "://" not in db_url
    expected = db_url if sqlite else normalise_url(db_url).replace("root@", "root:***@", 1)
    assert (caught.value.database, caught.value.timeout) == (expected, 0.2)
    assert f"waited 0.2 s for the schema lock of {expected}" in str(caught.value)
    assert "hunter2" not in str(caught.value)
