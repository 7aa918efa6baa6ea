"""``report recommendations`` at scale: 100,000 recommendations with 1,000,000 assessments,
bulk-loaded into the report projection, on SQLite and PostgreSQL: the time of the report
grouped by every dimension, the peak memory of the process that runs it, and the query plan
of the projection scan (an index range scan in key order: no sort, no JSON per row).

Run on demand (never by the test suite): ``.venv/bin/python -m bench.reports``
(``--recommendations``, ``--assessments``, ``--backend sqlite|postgresql|both``,
``--pg-url``). Figures go to stdout and ``bench/results/reports-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import peak_rss_kib, rss_kib
from opcatflow.engine import Engine, FrozenClock, SQLAlchemyStore, load_catalog
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.reports import facts_query
from opcatflow.engine.sql.store import normalise_url
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.reporting import service
from opcatflow.workflows.reporting.implementation import ASSESSMENT_FIELDS
from opcatflow.workflows.reporting.recommendations import DEFAULT_BY, DIMENSIONS, READS

DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test"
NOW = datetime(2027, 2, 1, 12, tzinfo=UTC)
STATUSES = ("not_started", "in_progress", "partially_implemented", "implemented",
            "not_implemented", "no_longer_relevant")  # fmt: skip
SOURCES = ("npm_visit", "npm_complaint", "spt", "cat", "upr")
CHUNK = 20_000


def _engine(url: str) -> Engine:
    store = SQLAlchemyStore(url, synchronous="NORMAL")
    store.ensure_schema()
    catalog = load_catalog([BUNDLED], registry)
    return Engine(store, catalog, registry, clock=FrozenClock(NOW), register=False)


def _rows(n_recs: int, n_assessments: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The projection rows the engine writes for each recommendation (and its registers)."""
    rnd = random.Random(seed)
    per = n_assessments // n_recs
    for i in range(200):
        yield from _register("place", f"p-{i}", f"Place {i}")
    for i in range(50):
        yield from _register("authority", f"a-{i}", f"Authority {i}")
    for i in range(30):
        yield from _register("theme", f"t-{i}", f"Theme {i}")
    for _ in range(n_recs):
        rec = str(uuid.UUID(int=rnd.getrandbits(128)))
        sent = date(2020, 1, 1) + timedelta(days=rnd.randrange(7 * 365))

        def fact(field: str, value: str, entry: str = "", rec: str = rec) -> dict[str, Any]:
            return {"workflow_id": "recommendation", "instance_id": rec, "field": field,
                    "entry": entry, "value": value}  # fmt: skip

        yield fact("@state", "issued")
        yield fact("@created_at", NOW.isoformat())
        yield fact("source", rnd.choice(SOURCES))
        yield fact("addressee", f"a-{rnd.randrange(50)}")
        yield fact("sent_on", sent.isoformat())
        for k, place in enumerate(rnd.sample(range(200), rnd.randint(1, 3))):
            yield fact("places", f"p-{place}", str(k))
        for k, theme in enumerate(rnd.sample(range(30), rnd.randint(1, 2))):
            yield fact("themes", f"t-{theme}", str(k))
        on = sent
        for k in range(1, per + 1):
            on += timedelta(days=rnd.randrange(1, 60))
            yield fact("assessments.on", on.isoformat(), str(k))
            yield fact("assessments.status", rnd.choice(STATUSES), str(k))


def _register(workflow: str, entry: str, name: str) -> Iterator[dict[str, Any]]:
    for field, value in (("@state", "active"), ("@created_at", NOW.isoformat()), ("name", name)):
        yield {"workflow_id": workflow, "instance_id": entry, "field": field, "entry": "",
               "value": value}  # fmt: skip
    if workflow == "place":
        yield {"workflow_id": workflow, "instance_id": entry, "field": "place_type", "entry": "",
               "value": "prison"}  # fmt: skip


def load(engine: Engine, n_recs: int, n_assessments: int) -> tuple[int, float]:
    """Bulk-load the projection (as rebuilt); returns the rows and the seconds it took."""
    started = time.perf_counter()
    count = 0
    batch: list[dict[str, Any]] = []
    with engine.store.connect(write=True) as conn:
        for row in _rows(n_recs, n_assessments):
            batch.append(row)
            if len(batch) == CHUNK:
                conn.execute(t.report_facts.insert(), batch)
                count += len(batch)
                batch.clear()
        if batch:
            conn.execute(t.report_facts.insert(), batch)
            count += len(batch)
    with engine.store.write() as uow:
        uow.reports.set_digest(engine.projector.digest)  # built: no rebuild on open
    if engine.store.dialect == "postgresql":  # as autovacuum leaves a table at rest
        raw = engine.store.engine.execution_options(isolation_level="AUTOCOMMIT")
        with raw.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE report_facts")
    return count, time.perf_counter() - started


def plan(engine: Engine) -> list[str]:
    query = facts_query("recommendation", {*READS, *ASSESSMENT_FIELDS, "@state", "@created_at"})
    with engine.store.connect() as conn:
        text = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + text)
            return [str(row[-1]) for row in rows]
        rows = conn.exec_driver_sql("EXPLAIN " + text)
        return [str(row[0]) for row in rows]


def measure(url: str, by: tuple[str, ...]) -> dict[str, Any]:
    """In a process of its own (so its peak memory is the report's): the report, timed."""
    engine = _engine(url)
    try:
        before = rss_kib()
        started = time.perf_counter()
        report = service.recommendations(engine, by)
        seconds = time.perf_counter() - started
        return {
            "seconds": round(seconds, 2),
            "groups": len(report.tables[0].rows),
            "recommendations": report.parameters["recommendations"],
            "rss_before_kib": before,
            "peak_rss_kib": peak_rss_kib(),
        }
    finally:
        engine.close()


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = _engine(url)
    try:
        rows, load_seconds = load(engine, args.recommendations, args.assessments)
        found = plan(engine)
    finally:
        engine.close()
    print(f"\n== {name}: {args.recommendations:,} recommendations, "
          f"{args.assessments:,} assessments, {rows:,} projection rows ==")  # fmt: skip
    print(f"bulk load {load_seconds:.1f} s")
    reports = {}
    for by in (DEFAULT_BY, DIMENSIONS):
        child = subprocess.run(
            [sys.executable, "-m", "bench.reports", "--measure", url, "--by", ",".join(by)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(child.stdout)
        reports[",".join(by)] = figures
        print(f"report by {','.join(by)}: {figures['seconds']} s, {figures['groups']:,} groups, "
              f"peak RSS {figures['peak_rss_kib'] / 1024:.0f} MiB "
              f"(at start {figures['rss_before_kib'] / 1024:.0f} MiB)")  # fmt: skip
    print("plan:\n  " + "\n  ".join(found))
    return {"rows": rows, "load_seconds": round(load_seconds, 1), "reports": reports,
            "plan": found}  # fmt: skip


@contextmanager
def databases(backends: list[str], pg_url: str) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        found: list[tuple[str, str]] = []
        schema = f"bench_reports_{uuid.uuid4().hex[:8]}"
        admin = None
        if "sqlite" in backends:
            found.append(("sqlite", os.path.join(tmp, "reports.db")))
        if "postgresql" in backends:
            admin = sa.create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            sep = "&" if "?" in pg_url else "?"
            found.append(("postgresql", f"{pg_url}{sep}options=-csearch_path%3D{schema}"))
        try:
            yield found
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                admin.dispose()


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: the schema and the folder are dropped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    parser.add_argument("--recommendations", type=int, default=100_000)
    parser.add_argument("--assessments", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=os.environ.get("OPCATFLOW_BENCH_PG", DEFAULT_PG))
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--by", default=",".join(DEFAULT_BY), help=argparse.SUPPRESS)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "reports-latest.json"
    )
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, tuple(args.by.split(",")))))
        return 0
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {
        "settings": {
            k: v for k, v in vars(args).items() if k in ("recommendations", "assessments")
        },
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with databases(backends, args.pg_url) as dbs:
        for name, url in dbs:
            results[name] = run_backend(name, url, args)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
