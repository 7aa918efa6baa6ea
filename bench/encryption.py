"""Part (e): ``Engine.fire`` with personal values sealed, against the same run without sealing.

Both sides run the same engine, workflow and fires: each fire writes a new personal note and a
reason, on instances that also hold a personal name. The "sealed" side is the engine as it
ships. The "clear" side is the same engine with its store seen through a stand-in that seals
nothing (values, reasons and replies are stored as given; the audit's keyed hashes stay, as
they were before sealing existed): the difference between the two is what sealing costs.
Runs alternate which side goes first; the ratio is of the medians.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import ACTOR, ROLE, bench_logger, median, pg_schemas
from opcatflow.engine import Engine, Registry
from opcatflow.engine.audit import Redactor
from opcatflow.engine.crypto.providers import LocalKeys

WORKFLOW = Path(__file__).with_name("pingpong_personal.yaml")
WORKFLOW_ID = "pingpong_personal"
SIDES = ("sealed", "clear")
WARMUP = 50


class _ClearKeys:
    """Stands in for an instance's keys: seals nothing, hashes as before."""

    redactor = Redactor(b"\x00" * 32)

    def seal_text(self, text: str, where: str) -> str:
        return text


class _ClearUnit:
    """A unit of work over the raw store, with the keys the engine's writes ask for."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        for name in (
            "instances",
            "audit",
            "definitions",
            "timers",
            "outbox",
            "idempotency",
            "keys",
            "data_keys",
        ):
            setattr(self, name, getattr(raw, name))

    def ensure_keys(self, owner: str, now: Any) -> _ClearKeys:
        return _ClearKeys()

    def savepoint(self) -> Any:
        return self.raw.savepoint()


class _ClearStore:
    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    @contextmanager
    def write(self) -> Iterator[_ClearUnit]:
        with self.raw.write() as uow:
            yield _ClearUnit(uow)

    @contextmanager
    def read(self) -> Iterator[_ClearUnit]:
        with self.raw.read() as uow:
            yield _ClearUnit(uow)


class Side:
    def __init__(self, kind: str, url: str, synchronous: str) -> None:
        self.engine = Engine.open(
            url,
            [WORKFLOW],
            Registry(),
            synchronous=synchronous,
            logger=bench_logger("off"),
            keys=LocalKeys(),
        )
        if kind == "clear":
            self.engine.store = _ClearStore(self.engine.store.raw)  # type: ignore[assignment]
        self.ids: list[str] = []
        self.turn = 0

    def start(self, count: int) -> None:
        data = {"name": "bench person " + secrets.token_hex(8), "note": "first"}
        self.ids = [
            self.engine.start(WORKFLOW_ID, actor=ACTOR, role=ROLE, data=data).id
            for _ in range(count)
        ]

    def fire(self, n: int) -> float:
        notes = [secrets.token_hex(16) for _ in range(n)]
        begin = time.perf_counter()
        for k in range(n):
            i = self.turn % len(self.ids)
            trigger = "go" if (self.turn // len(self.ids)) % 2 == 0 else "back"
            self.engine.fire(
                self.ids[i],
                trigger,
                actor=ACTOR,
                role=ROLE,
                data={"note": notes[k]},
                reason="seen at the visit",
            )
            self.turn += 1
        return time.perf_counter() - begin

    def close(self) -> None:
        self.engine.close()


def _measure(
    urls: dict[str, str], synchronous: str, runs: int, n: int, pool: int
) -> dict[str, Any]:
    sides = {kind: Side(kind, urls[kind], synchronous) for kind in SIDES}
    try:
        for side in sides.values():
            side.start(pool)
            side.fire(WARMUP)
        rates: dict[str, list[float]] = {kind: [] for kind in SIDES}
        for run in range(runs):
            order = SIDES if run % 2 == 0 else SIDES[::-1]
            for kind in order:
                rates[kind].append(n / sides[kind].fire(n))
    finally:
        for side in sides.values():
            side.close()
    sealed, clear = median(rates["sealed"]), median(rates["clear"])
    return {
        "sealed_per_s": round(sealed, 1),
        "clear_per_s": round(clear, 1),
        "ratio": round(sealed / clear, 3),
        "runs": rates,
    }


def run(*, runs: int, n: int, pool: int, pg_url: str) -> dict[str, Any]:
    """(e) on SQLite (synchronous FULL) and PostgreSQL; returns the figures per backend."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="opcatflow-bench-e-") as folder:
        urls = {kind: str(Path(folder) / f"{kind}.db") for kind in SIDES}
        results["sqlite_full"] = _measure(urls, "FULL", runs, n, pool)
    with pg_schemas(pg_url, len(SIDES)) as pg_urls:
        results["postgresql"] = _measure(
            dict(zip(SIDES, pg_urls, strict=True)), "FULL", runs, n, pool
        )
    return results
