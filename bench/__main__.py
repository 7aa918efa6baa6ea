"""``python -m bench``: run the benchmark parts, print a table, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from bench import durable, encryption, inmemory, memory_store, report, scale
from bench.common import DEFAULT_PG_URL, pg_server_version


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="opcatflow benchmarks: (a) durable transitions against a bare-Core floor, "
        "(b) in-memory fire against bare transitions, (c) 100,000 instances: rate and memory, "
        "(d) a fire on the in-memory store against the in-memory decision, "
        "(e) a fire with personal values sealed against the same fire unsealed.",
    )
    parser.add_argument(
        "--only",
        choices=("a", "b", "c", "d", "e"),
        action="append",
        help="run only this part (repeatable); default: all five",
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per configuration (default 5)")
    parser.add_argument(
        "--pg4-runs",
        type=int,
        default=3,
        help="runs for PostgreSQL with 4 processes; each spawns 4 fresh workers (default 3)",
    )
    parser.add_argument(
        "--n", type=int, default=500, help="(a) transitions per run and process (default 500)"
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=20,
        help="(a) instances per process that the transitions go round (default 20)",
    )
    parser.add_argument(
        "--instances", type=int, default=100_000, help="(c) instances (default 100000)"
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=[c.name for c in durable.CONFIGS],
        help="(a) only these configurations",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("OPCATFLOW_BENCH_PG", DEFAULT_PG_URL),
        help="PostgreSQL base URL; each run uses fresh schemas in it, dropped afterwards "
        f"(default $OPCATFLOW_BENCH_PG or {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--log",
        choices=("off", "json"),
        default="off",
        help="engine logging: 'off' drops info events (an application logging at WARNING), "
        "'json' renders every event as JSON to /dev/null (default off)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="also write bench/results/<date>.json (a run to keep on record)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parts = set(args.only or ("a", "b", "c", "d", "e"))

    def progress(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    began = time.perf_counter()
    results: dict[str, Any] = {
        "environment": report.environment(pg_server_version(args.pg_url)),
        "settings": {
            "runs": args.runs,
            "pg4_runs": args.pg4_runs,
            "n": args.n,
            "pool": args.pool,
            "instances": args.instances,
            "log": args.log,
        },
    }
    if "a" in parts:
        results["a_durable"] = durable.run(
            runs=args.runs,
            n=args.n,
            instances=args.pool,
            pg_url=args.pg_url,
            pg_runs=args.pg4_runs,
            log=args.log,
            configs=tuple(args.configs or ()),
            progress=progress,
        )
    if "b" in parts:
        results["b_in_memory"] = inmemory.run(runs=args.runs, progress=progress)
    if "d" in parts:
        results["d_memory_store"] = memory_store.run(
            runs=args.runs, log=args.log, progress=progress
        )
    if "e" in parts:
        progress("(e) sealed against clear fires, SQLite FULL and PostgreSQL")
        results["e_encryption"] = encryption.run(
            runs=args.runs, n=args.n, pool=args.pool, pg_url=args.pg_url
        )
    if "c" in parts:
        results["c_scale"] = scale.run(instances=args.instances, log=args.log, progress=progress)
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.perf_counter() - began, 1)
    print(report.table(results))
    print(f"wall time {results['wall_s']:.0f} s")
    for path in report.write(results, record=args.record):
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
