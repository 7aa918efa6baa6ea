"""``python -m bench.audit_anchor``: ``audit verify --checkpoint`` over bulk-built valid chains.

Builds ``--records`` audit records (format 4, valid chains of ``--per-instance`` records, each
instance row matching its last record) straight into a SQLite file (or a fresh PostgreSQL
schema with ``--pg``), signs a checkpoint over them (timed), then verifies against it in a
fresh process, for each size given, reporting records per second and the peak resident set
growth of that process: flat memory means the growth stays the same from the smallest size
to the largest. Prints one line per size; ``uptime`` is printed first (the machine's load
moves every figure).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import DEFAULT_PG_URL, peak_rss_kib, rss_kib
from opcatflow.engine import Engine
from opcatflow.engine.audit import GENESIS, STATE_FORMAT, make_record, state_hash
from opcatflow.engine.checkpoint import SigningKey
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.audit import audit_row
from opcatflow.workflows import registry

HERE = Path(__file__).parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_BATCH = 20_000


def build(url: str, records: int, per_instance: int) -> None:
    """``records`` valid records over ``records // per_instance`` instances."""
    Engine.open(url, [HERE / "pingpong.yaml"], registry).close()
    if "://" in url:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    else:
        engine = sa.create_engine(f"sqlite:///{url}")
    data = {"label": "x"}
    row_hash = state_hash("pingpong", 1, "a", 1, data)
    position = 0
    rows: list[dict[str, Any]] = []
    instances: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for _ in range(records // per_instance):
            instance_id = str(uuid.uuid4())
            prev = GENESIS
            for seq in range(1, per_instance + 1):
                position += 1
                record = make_record(
                    instance_id=instance_id, seq=seq,
                    at=T0 + timedelta(seconds=position), actor="bench", role="player",
                    workflow_id="pingpong", workflow_version=1, trigger="go", from_state="a",
                    to_state=None, outcome="refused", reason=None, changes="{}",
                    prev_hash=prev, format=STATE_FORMAT, state_hash=row_hash,
                )  # fmt: skip
                prev = record.hash
                rows.append(audit_row(record, position))
            at = T0 + timedelta(seconds=position)
            instances.append(
                {
                    "id": instance_id, "workflow_id": "pingpong", "workflow_version": 1,
                    "state": "a", "data": data, "version": 1, "parent_id": None,
                    "created_at": at, "updated_at": at, "state_entered_at": at,
                    "audit_seq": per_instance, "audit_head": prev,
                }
            )  # fmt: skip
            if len(rows) >= _BATCH:
                conn.execute(t.instances.insert(), instances)
                conn.execute(t.audit.insert(), rows)
                rows, instances = [], []
        if instances:
            conn.execute(t.instances.insert(), instances)
            conn.execute(t.audit.insert(), rows)
        conn.execute(t.audit_position.update().values(last=position))
    engine.dispose()


def _verify(url: str, checkpoint_path: str, key_path: str, out: Any) -> None:
    from opcatflow.engine.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(Path(checkpoint_path))
    with Engine.open(url, [HERE / "pingpong.yaml"], registry, create=False) as engine:
        base = rss_kib()
        began = time.perf_counter()
        report = engine.verify_audit([checkpoint])
        seconds = time.perf_counter() - began
    out.send(
        {
            "status": report.status,
            "records": report.records,
            "seconds": seconds,
            "peak_growth_kib": peak_rss_kib() - base,
        }
    )


def run(url: str, records: int, per_instance: int, folder: Path) -> dict[str, Any]:
    began = time.perf_counter()
    build(url, records, per_instance)
    built = time.perf_counter() - began
    key = SigningKey(folder / "signing")
    with Engine.open(url, [HERE / "pingpong.yaml"], registry, create=False) as engine:
        began = time.perf_counter()
        size, root = engine.audit_root()
        checkpoint = key.sign(size, root, datetime.now(UTC))
        signed = time.perf_counter() - began
    path = folder / f"checkpoint-{records}.json"
    path.write_text(json.dumps(checkpoint.as_json()))
    receive, send = mp.get_context("spawn").Pipe(duplex=False)
    child = mp.get_context("spawn").Process(
        target=_verify, args=(url, str(path), str(key.path), send)
    )
    child.start()
    result: dict[str, Any] = receive.recv()
    child.join()
    return {
        "records": records,
        "build_s": round(built, 1),
        "checkpoint_s": round(signed, 2),
        "verify_s": round(result["seconds"], 1),
        "records_per_s": round(result["records"] / result["seconds"]),
        "peak_growth_mib": round(result["peak_growth_kib"] / 1024, 1),
        "status": result["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_anchor", description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--per-instance", type=int, default=100)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--pg-url", default=os.environ.get("OPCATFLOW_BENCH_PG", DEFAULT_PG_URL))
    args = parser.parse_args()
    print("load:", os.getloadavg())
    for records in args.records:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            os.environ["OPCATFLOW_KEY_FILE"] = str(folder / "keys")
            if not args.pg:
                print(json.dumps(run(str(folder / "audit.db"), records, args.per_instance, folder)))
                continue
            schema = "bench_" + uuid.uuid4().hex[:10]
            admin = sa.create_engine(
                args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            try:
                url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
                print(json.dumps(run(url, records, args.per_instance, folder)))
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
