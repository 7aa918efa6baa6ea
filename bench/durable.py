"""Part (a): durable transitions per second, engine against the bare-Core floor.

Each configuration gets two databases (SQLite files, or PostgreSQL schemas): one for the
engine, one for the floor. Both start the same number of instances, then fire ``n``
transitions per run, round-robin over their instances, each fire one transaction. Runs
alternate which side goes first, so drift (WAL growth, checkpoints, a busy neighbour) falls on
both sides alike.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import NEXT_TRIGGER, median, pg_schemas
from bench.sides import Side, open_side

SIDES = ("engine", "floor")
WARMUP = 50


@dataclass
class Pool:
    """Instances of one side and where each stands (state, version), round-robin."""

    side: Side
    ids: list[str]
    states: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    turn: int = 0

    @classmethod
    def started(cls, side: Side, count: int) -> Pool:
        ids = [side.start() for _ in range(count)]
        return cls(side, ids, ["a"] * count, [1] * count)

    def fire(self, n: int) -> float:
        """Fire ``n`` transitions; returns the elapsed seconds."""
        side, ids, states, versions = self.side, self.ids, self.states, self.versions
        count = len(ids)
        turn = self.turn
        begin = time.perf_counter()
        for _ in range(n):
            i = turn % count
            trigger = NEXT_TRIGGER[states[i]]
            side.fire(ids[i], trigger, versions[i])
            states[i] = "b" if trigger == "go" else "a"
            versions[i] += 1
            turn += 1
        elapsed = time.perf_counter() - begin
        self.turn = turn
        return elapsed


@dataclass
class Config:
    name: str
    backend: str
    synchronous: str
    processes: int


def _in_process(
    urls: dict[str, str], config: Config, runs: int, n: int, instances: int, log: str
) -> dict[str, list[float]]:
    pools: dict[str, Pool] = {}
    try:
        for kind in SIDES:
            side = open_side(kind, urls[kind], config.synchronous, log)
            pools[kind] = Pool.started(side, instances)
            pools[kind].fire(WARMUP)
        rates: dict[str, list[float]] = {kind: [] for kind in SIDES}
        for run in range(runs):
            order = SIDES if run % 2 == 0 else SIDES[::-1]
            for kind in order:
                rates[kind].append(n / pools[kind].fire(n))
        return rates
    finally:
        for pool in pools.values():
            pool.side.close()


def _worker(
    kind: str,
    url: str,
    synchronous: str,
    log: str,
    n: int,
    instances: int,
    barrier: Any,
    results: Any,
) -> None:
    side = None
    try:
        side = open_side(kind, url, synchronous, log)
        pool = Pool.started(side, instances)
        pool.fire(WARMUP)
        barrier.wait()
        begin = time.monotonic()  # system-wide on Linux: comparable across processes
        pool.fire(n)
        results.put((begin, time.monotonic(), n, None))
    except BaseException as err:
        barrier.abort()  # release the others: this measurement is lost
        results.put((0.0, 0.0, 0, repr(err)))
    finally:
        if side is not None:
            side.close()


def _multi_process(url: str, kind: str, config: Config, n: int, instances: int, log: str) -> float:
    """One measurement: ``processes`` workers, each on its own instances, released together.

    The rate is every worker's transitions over the span from the first start to the last end.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(config.processes, timeout=300)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(kind, url, config.synchronous, log, n, instances, barrier, results),
        )
        for _ in range(config.processes)
    ]
    for worker in workers:
        worker.start()
    spans = []
    try:
        while len(spans) < len(workers):
            try:
                spans.append(results.get(timeout=1))
            except queue.Empty:
                if not any(w.is_alive() for w in workers):
                    raise RuntimeError(f"{kind} workers died without a result") from None
    finally:
        for worker in workers:
            worker.join(timeout=60)
    errors = [err for *_, err in spans if err]
    if errors:
        raise RuntimeError(f"{kind} worker failed: {errors[0]}")
    begin = min(s[0] for s in spans)
    end = max(s[1] for s in spans)
    return sum(s[2] for s in spans) / (end - begin)


def run_config(
    config: Config,
    *,
    runs: int,
    n: int,
    instances: int,
    pg_url: str,
    log: str,
    workdir: Path,
) -> dict[str, Any]:
    """Measure one configuration; returns rates per run, medians and the ratio."""
    if config.backend == "sqlite":
        urls = {kind: str(workdir / f"{config.name}-{kind}.db") for kind in SIDES}
        rates = _in_process(urls, config, runs, n, instances, log)
    else:
        with pg_schemas(pg_url, len(SIDES)) as schema_urls:
            urls = dict(zip(SIDES, schema_urls, strict=True))
            if config.processes == 1:
                rates = _in_process(urls, config, runs, n, instances, log)
            else:
                for kind in SIDES:  # migrate once, before the workers race to do it
                    open_side(kind, urls[kind], config.synchronous, log).close()
                rates = {kind: [] for kind in SIDES}
                for run in range(runs):
                    order = SIDES if run % 2 == 0 else SIDES[::-1]
                    for kind in order:
                        rates[kind].append(
                            _multi_process(urls[kind], kind, config, n, instances, log)
                        )
    engine, floor = median(rates["engine"]), median(rates["floor"])
    return {
        "config": config.name,
        "backend": config.backend,
        "synchronous": config.synchronous if config.backend == "sqlite" else None,
        "processes": config.processes,
        "runs": runs,
        "transitions_per_run": n * config.processes,
        "instances_per_process": instances,
        "engine_per_s": [round(r, 1) for r in rates["engine"]],
        "floor_per_s": [round(r, 1) for r in rates["floor"]],
        "engine_median_per_s": round(engine, 1),
        "floor_median_per_s": round(floor, 1),
        "ratio": round(engine / floor, 3),
        "target": ">= 0.50",
        "met": engine / floor >= 0.5,
    }


CONFIGS = (
    Config("sqlite-full", "sqlite", "FULL", 1),
    Config("sqlite-normal", "sqlite", "NORMAL", 1),
    Config("postgresql-1proc", "postgresql", "FULL", 1),
    Config("postgresql-4proc", "postgresql", "FULL", 4),
)


def run(
    *,
    runs: int,
    n: int,
    instances: int,
    pg_url: str,
    pg_runs: int,
    log: str,
    configs: tuple[str, ...] | None = None,
    progress: Any = print,
) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="opcatflow-bench-") as tmp:
        for config in CONFIGS:
            if configs and config.name not in configs:
                continue
            config_runs = pg_runs if config.processes > 1 else runs
            progress(f"(a) {config.name}: {config_runs} runs of {n} transitions per process")
            results.append(
                run_config(
                    config,
                    runs=config_runs,
                    n=n,
                    instances=instances,
                    pg_url=pg_url,
                    log=log,
                    workdir=Path(tmp),
                )
            )
    return results
