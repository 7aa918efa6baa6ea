"""Lists and id prefixes are answered from indexes, not by reading the table: the query
plans say so, on SQLite and PostgreSQL. (The tables are small, so PostgreSQL is told not to
prefer a sequential scan: what is checked is that an index *answers* the query.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from storekit import T0

from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.engine.sql.instances import IDS_STARTING_WITH, page_statement, prefix_range


@pytest.fixture
def sql_store(db_url: str) -> Iterator[SQLAlchemyStore]:
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    yield store
    store.close()


def plan(store: SQLAlchemyStore, statement: sa.Select[object], params: dict[str, object]) -> str:
    with store.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        sql = str(compiled)
        values = {**compiled.params, **params}
        if store.dialect == "postgresql":
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            conn.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
            rows = conn.exec_driver_sql(f"EXPLAIN {sql}", values)
        else:  # positional parameters, in the order the statement names them
            ordered = tuple(values[name] for name in compiled.positiontup or ())
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ordered)
        return "\n".join(" ".join(str(c) for c in row) for row in rows)


def test_a_page_after_a_cursor_is_read_from_the_created_index(sql_store: SQLAlchemyStore) -> None:
    text = plan(sql_store, page_statement(after=(T0, "abcdef12"), limit=50), {})
    assert "ix_instances_created" in text, text
    assert "TEMP B-TREE" not in text  # SQLite: no sort of the table
    assert "Sort" not in text  # PostgreSQL: the index's order is the list's


def test_an_id_prefix_is_a_range_of_the_primary_key_index(sql_store: SQLAlchemyStore) -> None:
    low, high = prefix_range("abcdef12")
    text = plan(sql_store, IDS_STARTING_WITH, {"low": low, "high": high, "limit": 11})
    if sql_store.dialect == "postgresql":
        assert "Index Only Scan using instances_pkey" in text, text
    else:
        assert "USING COVERING INDEX sqlite_autoindex_instances_1 (id>? AND id<?)" in text, text
