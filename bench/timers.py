"""Obligation benchmark: with many pending obligations, send the overdue alerts of the due
ones; what a sweep costs when nothing is due, and the plans that prove the sweep and the
first page of overdue obligations read an index.

Run with ``python -m bench.timers`` (``--help`` for the sizes). For each backend (a SQLite
file, a fresh PostgreSQL schema):

1. setup (not measured): ``--pending`` obligations due in a year, with their due timers,
   bulk-inserted with Core over parked instances (``--per-instance`` each); ``--due`` ticket
   instances, each with an overdue obligation and its first alert timer due an hour ago;
   ``--engine-fires`` more for the engine's rate;
2. the engine's own rate: ``Engine.fire`` of an escalation, one transaction per call, with
   the same hooks (the outbox writer) as the scheduler, writing one message as an alert does;
3. the scheduler claims every due alert timer and sends it (an audit record in the case's
   chain and an outbox message per recipient), ``--batch`` per transaction; steps 2 and 3
   run interleaved in ``--rounds`` slices, so load that changes during the run weighs on
   both rates alike;
4. the empty sweep: nothing due, timed, and the plan of its probe (EXPLAIN);
5. the first page of overdue obligations (100, in due order) and its plan.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from opcatflow.engine import Engine, FrozenClock, Registry, SQLAlchemyStore, load_catalog
from opcatflow.engine.audit import GENESIS, STARTED, Redactor, make_record
from opcatflow.engine.rows import ObligationStatus
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.obligations import listing_query
from opcatflow.engine.sql.store import normalise_url
from opcatflow.engine.sql.timers import next_due_query
from opcatflow.engine.sql.unit import take_positions
from opcatflow.notifications import OutboxWriter
from opcatflow.notifications.directory import parse_directory

TICKET = """\
id: ticket
version: 1
title: Ticket with an escalating deadline and an alerting one
roles: {clerk: Handles tickets}
start: {writes: [n]}
fields: {n: {type: integer}}
states:
  waiting:
    initial: true
  parked:
    deadlines:
      - {id: far, due: 1 years}
  escalated: {}
  done: {final: true}
deadlines:
  - id: reply
    scope: [waiting, escalated]
    due: 1 hours
    met_by: {trigger: close}
    owed_by: state
    overdue_alerts:
      - {every: 30 days, to: [clerk], template: deadline_overdue}
transitions:
  - {trigger: escalate, source: waiting, dest: escalated, roles: [scheduler, clerk]}
  - {trigger: park, source: waiting, dest: parked, roles: [clerk]}
  - {trigger: close, source: [waiting, parked, escalated], dest: done, roles: [clerk]}
notifications:   # a fire writes one message too, as an alert does: like for like
  - {on: {transition: escalate}, to: [clerk], template: deadline_overdue}
"""
DIRECTORY = """
people:
  - {id: clerk1, name: Clerk One, email: clerk1@npm.example, roles: [clerk], channel: log}
"""
CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = CREATED + timedelta(hours=2)
DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test"


def _logger() -> Any:
    return structlog.wrap_logger(
        structlog.ReturnLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def _engine(url: str, folder: Path) -> Engine:
    store = SQLAlchemyStore(url, synchronous="NORMAL")
    store.ensure_schema()
    return Engine(
        store,
        load_catalog([folder], Registry()),
        Registry(),
        clock=FrozenClock(NOW),
        logger=_logger(),
        hooks=[OutboxWriter(parse_directory(DIRECTORY, "<directory>"))],
    )


def _instances(
    engine: Engine, count: int, state: str, redactor: Redactor
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    wf = engine.workflow("ticket")
    instances, records = [], []
    for n in range(count):
        instance_id = str(uuid.uuid4())
        record = make_record(
            instance_id=instance_id, seq=1, at=CREATED, actor="bench", role="clerk",
            workflow_id=wf.id, workflow_version=wf.version, trigger="start", from_state=None,
            to_state=state, outcome=STARTED, reason=None,
            changes=redactor.changes({}, {"n": n}, frozenset()), prev_hash=GENESIS,
        )  # fmt: skip
        instances.append(
            {
                "id": instance_id, "workflow_id": wf.id, "workflow_version": wf.version,
                "state": state, "data": {"n": n}, "version": 1, "parent_id": None,
                "created_at": CREATED, "updated_at": CREATED, "state_entered_at": CREATED,
                "audit_seq": 1, "audit_head": record.hash,
            }
        )  # fmt: skip
        records.append({k: getattr(record, k) for k in t.audit.c.keys() if k != "id"})  # noqa: SIM118
    return instances, records


def _obligation(
    instance_id: str, deadline: str, occurrence: int, due: datetime, status: str
) -> dict[str, Any]:
    return {
        "instance_id": instance_id, "deadline": deadline, "occurrence": occurrence,
        "scope": "parked" if deadline == "far" else "escalated waiting",
        "anchor": CREATED.isoformat(), "due_at": due, "last_day": due.date(), "status": status,
        "created_at": CREATED, "updated_at": CREATED,
    }  # fmt: skip


def _timer(row: Any, state: str, kind: str, due: datetime) -> dict[str, Any]:
    payload = (
        {"due": row.due_at.isoformat(), "step": 0, "offset": "30 days"} if kind == "alert" else {}
    )
    return {
        "instance_id": row.instance_id, "state": state, "deadline": row.deadline, "kind": kind,
        "occurrence": row.occurrence, "due_at": due, "status": "pending", "attempts": 0,
        "payload": payload, "created_at": CREATED, "obligation_id": row.id,
    }  # fmt: skip


def _insert(engine: Engine, table: sa.Table, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    for start in range(0, len(rows), chunk):
        with engine.store.connect(write=True) as conn:
            part = rows[start : start + chunk]
            if table is t.audit:  # records take their positions as the engine's do
                first = take_positions(conn, len(part))
                part = [{**row, "position": first + n} for n, row in enumerate(part)]
            conn.execute(table.insert(), part)


def _link(engine: Engine, deadline: str, state: str, kind: str, due: datetime | None) -> None:
    """A timer for every obligation of ``deadline`` (due at its own due time, or ``due``)."""
    o = t.obligations.c
    query = sa.select(o.id, o.instance_id, o.deadline, o.occurrence, o.due_at).where(
        o.deadline == deadline
    )
    with engine.store.connect() as conn:
        rows = conn.execute(query).all()
    for start in range(0, len(rows), 100_000):
        chunk = rows[start : start + 100_000]
        _insert(engine, t.timers, [_timer(r, state, kind, due or r.due_at) for r in chunk])


def seed(engine: Engine, *, pending: int, per_instance: int, due: int, extra: int) -> list[str]:
    """The pending, overdue and engine-rate instances; returns the engine-rate instance ids."""
    redactor = Redactor(b"bench")
    parked_count = max(1, pending // per_instance)
    parked, records = _instances(engine, parked_count, "parked", redactor)
    _insert(engine, t.instances, parked)
    _insert(engine, t.audit, records)
    far = NOW + timedelta(days=365)
    for start in range(0, pending, 100_000):
        rows = [
            _obligation(
                parked[i % parked_count]["id"],
                "far",
                i // parked_count + 1,
                far + timedelta(seconds=i),
                "pending",
            )
            for i in range(start, min(pending, start + 100_000))
        ]
        _insert(engine, t.obligations, rows)
    _link(engine, "far", "parked", "due", None)
    waiting, records = _instances(engine, due + extra, "waiting", redactor)
    _insert(engine, t.instances, waiting)
    _insert(engine, t.audit, records)
    due_at = CREATED + timedelta(hours=1)
    _insert(
        engine,
        t.obligations,
        [_obligation(w["id"], "reply", 1, due_at, "due") for w in waiting[:due]],
    )
    _link(engine, "reply", "waiting", "alert", due_at)
    # the engine-rate instances have no obligation: their escalation is fired by hand
    return [w["id"] for w in waiting[due:]]


def _plan(engine: Engine, query: Any, analyze: bool = True) -> list[str]:
    with engine.store.connect(write=True) as conn:
        compiled = query.compile(dialect=conn.dialect)
        params = compiled.construct_params()
        if conn.dialect.name == "sqlite":
            values = [params[k] for k in compiled.positiontup or ()]
            values = [v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in values]
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), tuple(values))
            return [str(row[-1]) for row in rows]
        how = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
        rows = conn.exec_driver_sql(how + str(compiled), params)
        return [str(row[0]) for row in rows]


def explain(engine: Engine) -> dict[str, list[str]]:
    """The plans of the empty sweep's probe and of the first page of overdue obligations."""
    return {
        "sweep": _plan(engine, next_due_query()),
        "overdue_page": _plan(engine, listing_query(ObligationStatus.DUE, limit=100)),
    }


def interleaved_rates(
    engine: Engine, scheduler: Scheduler, extra: list[str], args: argparse.Namespace
) -> tuple[float, int, float]:
    """The engine's fire rate, the alerts sent and the seconds they took.

    Interleaved in rounds: a slice of engine fires, then a slice of the alerts, so a machine
    that gets busier during the long run weighs on both sides alike."""
    rounds = max(1, min(args.rounds, len(extra)))
    fire_s = alert_s = 0.0
    fired = 0
    for r in range(rounds):
        began = time.perf_counter()
        for instance_id in extra[r::rounds]:
            engine.fire(instance_id, "escalate", actor="bench", role="clerk")
        fire_s += time.perf_counter() - began
        quota = args.due * (r + 1) // rounds - fired
        began = time.perf_counter()
        while quota > 0:
            batch = scheduler.run_batch(NOW)
            if not batch:
                break
            sent = sum(f.outcome == "alerted" for f in batch)
            fired += sent
            quota -= sent
        alert_s += time.perf_counter() - began
    return len(extra) / fire_s, fired, alert_s


def run_backend(name: str, url: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    def say(message: str) -> None:
        print(f"... {name}: {message}", file=sys.stderr, flush=True)

    engine = _engine(url, folder)
    try:
        began = time.perf_counter()
        extra = seed(
            engine,
            pending=args.pending,
            per_instance=args.per_instance,
            due=args.due,
            extra=args.engine_fires,
        )
        setup_s = time.perf_counter() - began
        say(
            f"seeded {args.pending:,} pending and {args.due:,} overdue obligations in {setup_s:.0f} s"
        )
        if engine.store.dialect == "postgresql":
            vacuum = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
            with vacuum.connect() as conn:  # the visibility map an index-only scan needs
                conn.exec_driver_sql("VACUUM ANALYZE")
            vacuum.dispose()
        scheduler = Scheduler(engine, batch_size=args.batch)
        engine_rate, fired, elapsed = interleaved_rates(engine, scheduler, extra, args)
        say(f"engine fire: {engine_rate:.0f}/s")
        say(f"scheduler: {fired:,} alerts sent in {elapsed:.1f} s ({fired / elapsed:.0f}/s)")
        sweeps = []
        for _ in range(args.sweeps):
            start = time.perf_counter()
            assert scheduler.run_batch(NOW) == []
            sweeps.append(time.perf_counter() - start)
        pages = []
        for _ in range(args.sweeps):
            start = time.perf_counter()
            with engine.store.read() as uow:
                page = uow.obligations.listing([ObligationStatus.DUE], limit=100)
            pages.append(time.perf_counter() - start)
        assert len(page) == min(100, args.due)
        plan = explain(engine)
        with engine.store.connect() as conn:
            audited = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.audit)
                .where(t.audit.c.actor == "scheduler")
            ).scalar_one()
            pending = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.obligations)
                .where(t.obligations.c.status == "pending")
            ).scalar_one()
            messages = conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar_one()
        return {
            "pending_obligations": int(pending),
            "due_obligations": args.due,
            "alerts_sent": fired,
            "outbox_messages": int(messages),
            "scheduler_audit_records": int(audited),
            "setup_s": round(setup_s, 1),
            "alerts_per_s": round(fired / elapsed, 1),
            "engine_fire_per_s": round(engine_rate, 1),
            "ratio": round((fired / elapsed) / engine_rate, 2),
            "empty_sweep_ms_median": round(statistics.median(sweeps) * 1000, 3),
            "empty_sweep_ms_p95": round(sorted(sweeps)[int(len(sweeps) * 0.95) - 1] * 1000, 3),
            "overdue_page_ms_median": round(statistics.median(pages) * 1000, 3),
            "plan": plan,
        }
    finally:
        engine.close()


@contextmanager
def databases(backends: list[str], pg_url: str) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        found: list[tuple[str, str]] = []
        schema = None
        admin = None
        if "sqlite" in backends:
            found.append(("sqlite", os.path.join(tmp, "timers.db")))
        if "postgresql" in backends:
            admin = sa.create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
            schema = f"bench_timers_{uuid.uuid4().hex[:8]}"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--pending", type=int, default=1_000_000, help="pending obligations (default 1,000,000)"
    )
    parser.add_argument(
        "--per-instance",
        type=int,
        default=100,
        help="pending obligations per parked instance (default 100)",
    )
    parser.add_argument(
        "--due", type=int, default=100_000, help="overdue obligations to alert (default 100,000)"
    )
    parser.add_argument(
        "--engine-fires",
        type=int,
        default=1_000,
        help="Engine.fire calls for its rate (default 1,000)",
    )
    parser.add_argument(
        "--batch", type=int, default=100, help="timers per claim transaction (default 100)"
    )
    parser.add_argument(
        "--rounds", type=int, default=20, help="interleaved rounds of fires and alerts (default 20)"
    )
    parser.add_argument("--sweeps", type=int, default=200, help="empty sweeps timed (default 200)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=os.environ.get("OPCATFLOW_BENCH_PG", DEFAULT_PG))
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "timers-latest.json"
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("output", "pg_url")}
    }
    results["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as wf_dir, databases(backends, args.pg_url) as dbs:
        (Path(wf_dir) / "ticket.yaml").write_text(TICKET)
        for name, url in dbs:
            results[name] = run_backend(name, url, args, Path(wf_dir))
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for name in backends:
        r = results[name]
        print(f"\n== {name}: {r['pending_obligations']:,} pending obligations ==")
        print(
            f"scheduler sent {r['alerts_sent']:,} overdue alerts at {r['alerts_per_s']}/s "
            f"(engine.fire: {r['engine_fire_per_s']}/s, ratio {r['ratio']})"
        )
        print(f"audit records by the scheduler: {r['scheduler_audit_records']:,}; "
              f"outbox messages: {r['outbox_messages']:,}")  # fmt: skip
        print(
            f"empty sweep: median {r['empty_sweep_ms_median']} ms, p95 {r['empty_sweep_ms_p95']} ms"
        )
        print(f"first overdue page: median {r['overdue_page_ms_median']} ms")
        print("sweep plan:\n  " + "\n  ".join(r["plan"]["sweep"]))
        print("overdue page plan:\n  " + "\n  ".join(r["plan"]["overdue_page"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
