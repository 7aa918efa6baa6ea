"""How long `opcatflow import recommendations` takes for a backlog (issue 24: 500 rows "in
seconds"), on a SQLite file and on PostgreSQL, the engine part only (rows already read).

    .venv/bin/python -m bench.recommendation_import [--rows 500] [--runs 3] [--pg-url URL]

Each run imports the same backlog into a fresh database (a new SQLite file, a new PostgreSQL
schema dropped afterwards): a fifth of the rows issued only, the others sent, replied, with a
position, assessed and closed in turn, every tenth repeating the row before it, all with
dates of 2018 to 2024. Printed: rows, steps (the start and each trigger), wall and CPU time
per run, and the median rows per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from opcatflow.adapters.recommendation_rows import ROLE, plan_rows
from opcatflow.adapters.rowfile import Row
from opcatflow.engine import Engine
from opcatflow.engine.batch import PlannedCase, enter_cases
from opcatflow.workflows import BUNDLED, registry

PG_URL = os.environ.get("OPCATFLOW_BENCH_PG", "postgresql://root@127.0.0.1:5432/test")
PLACES = ("north-prison", "south-station")


def backlog(n: int) -> list[PlannedCase]:
    rows = []
    for i in range(n):
        year = 2018 + i % 7
        values = {
            "key": f"R-{i}",
            "source": ("npm_visit", "spt", "cat", "upr")[i % 4],
            "addressee": "ministry-of-justice",
            "text": f"Recommendation {i} of the {year} report.",
            "places": list(PLACES[: 1 + i % 2]),
        }
        stage = i % 5
        if stage >= 1:
            values["sent_on"] = f"{year}-02-10"
        if stage >= 2:
            values |= {"reply": "We agree.", "reply_received_on": f"{year}-04-01"}
            values |= {"position": "accepted", "position_on": f"{year}-04-01"}
        if stage >= 3:
            values |= {"assessment_on": f"{year}-11-20", "assessment_status": "in_progress"}
        if stage == 4:
            values |= {"closed_on": f"{year + 1}-01-15", "closing_reason": "Implemented."}
        if i % 10 == 9:
            values["repeats"] = f"R-{i - 1}"
        rows.append(Row(i + 2, values, text=False))
    cases, problems = plan_rows(rows)
    assert not problems, problems
    return cases


def one_run(url: str, cases: list[PlannedCase]) -> tuple[float, float]:
    with Engine.open(url, [BUNDLED], registry) as engine:
        for place in PLACES:
            data = {"name": place, "place_type": "prison"}
            engine.start("place", actor="bench", role="head", data=data, instance_id=place)
        wall, cpu = time.perf_counter(), time.process_time()
        enter_cases(engine, cases, actor="bench", role=ROLE)
        return time.perf_counter() - wall, time.process_time() - cpu


def sqlite_url(folder: Path) -> str:
    return str(folder / f"{uuid.uuid4().hex}.db")


def pg_run(cases: list[PlannedCase], url: str) -> tuple[float, float]:
    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")  # fmt: skip
    schema = "bench_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        return one_run(f"{url}?options=-csearch_path%3D{schema}", cases)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    cases = backlog(args.rows)
    steps = sum(1 + len(c.steps) for c in cases)
    print(f"{args.rows} rows, {steps} steps; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        for name in ("sqlite", "postgresql"):
            times = [
                one_run(sqlite_url(Path(folder)), cases)
                if name == "sqlite"
                else pg_run(cases, args.pg_url)
                for _ in range(args.runs)
            ]
            walls = ", ".join(f"{w:.2f} s (cpu {c:.2f} s)" for w, c in times)
            rate = args.rows / statistics.median(w for w, _ in times)
            print(f"{name:10}  {walls}  median {rate:.0f} rows/s")


if __name__ == "__main__":
    main()
