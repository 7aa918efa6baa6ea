"""Shared pieces: the benchmark workflow, a quiet logger, statistics, memory probes, PG schemas."""

from __future__ import annotations

import logging
import os
import resource
import statistics
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from opcatflow.engine.sql.store import normalise_url

WORKFLOW = Path(__file__).with_name("pingpong.yaml")
WORKFLOW_ID = "pingpong"
ROLE = "player"
ACTOR = "bench"
DATA = {"label": "bench"}
# The ping-pong loop: trigger -> (from, to).
MOVES = {"go": ("a", "b"), "back": ("b", "a")}
NEXT_TRIGGER = {"a": "go", "b": "back"}

DEFAULT_PG_URL = "postgresql://root@127.0.0.1:5432/test"


def bench_logger(mode: str) -> Any:
    """The structlog logger handed to the engine.

    ``off``: info events are dropped by a filtering logger (what an application that logs at
    WARNING gets). ``json``: every event is rendered as JSON and written to /dev/null.
    """
    sink = structlog.PrintLogger(open(os.devnull, "w"))  # noqa: SIM115 - lives with the process
    if mode == "off":
        return structlog.wrap_logger(
            sink, wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
        )
    return structlog.wrap_logger(
        sink,
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def rss_kib() -> int:
    """The process's current resident set size, in KiB (Linux ``VmRSS``)."""
    return _status_kib("VmRSS:")


def peak_rss_kib() -> int:
    """The process's peak resident set size, in KiB (Linux ``VmHWM``).

    Not ``ru_maxrss``: Linux carries it across exec, so a spawned child would report its
    parent's peak at the time of the spawn. ``VmHWM`` belongs to the child's own address space.
    """
    return _status_kib("VmHWM:")


def ru_maxrss_kib() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux), for comparison with ``VmHWM``."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@contextmanager
def pg_schemas(base_url: str, count: int) -> Iterator[list[str]]:
    """``count`` fresh, empty PostgreSQL schemas; yields a URL for each, drops them after."""
    admin = sa.create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT")
    names = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    sep = "&" if "?" in base_url else "?"
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        yield [f"{base_url}{sep}options=-csearch_path%3D{name}" for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def pg_server_version(base_url: str) -> str | None:
    try:
        admin = sa.create_engine(normalise_url(base_url))
        with admin.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar()
        admin.dispose()
    except sa.exc.OperationalError:
        return None
    return str(version)
