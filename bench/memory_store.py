"""Part (d): a fire on the in-memory store against the in-memory decision alone.

The store side is ``Engine.fire`` on ``Engine.open("memory:")``: the whole write path (unit of
work, instance lock and version check, the decision, the audit record appended, the instance
updated, hooks, commit, the log call) with nothing durable under it. The decision side is part
(b)'s engine fire: ``firing.decide``, ``Redactor.changes`` and ``make_record``, no store at all.
The ratio is what the store's bookkeeping costs on top of deciding; target: at most 2x. Both
ping-pong a -> b -> a (one loop iteration is two fires), interleaved, median CPU time per
fire.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

from bench.common import ACTOR, DATA, ROLE, WORKFLOW, WORKFLOW_ID, bench_logger, median
from bench.inmemory import _engine_fire
from opcatflow.engine import AuditRecord, Engine, Instance, Registry

TARGET = 2.0


def _store_fire(log: str) -> tuple[Engine, Callable[[], None]]:
    # A bound logger: structlog's lazy proxy (what ``bench_logger`` returns) binds a new
    # logger on every call, which costs more than the whole store does here.
    logger = bench_logger(log).bind()
    engine = Engine.open("memory:", [WORKFLOW], Registry(), logger=logger)
    instance_id = engine.start(WORKFLOW_ID, actor=ACTOR, role=ROLE, data=DATA).id
    fire = engine.fire

    def pair() -> None:
        fire(instance_id, "go", actor=ACTOR, role=ROLE)
        fire(instance_id, "back", actor=ACTOR, role=ROLE)

    return engine, pair


def _store_ops(engine: Engine) -> Callable[[], None]:
    """What the store itself does for one fire, twice: open a unit of work, lock the instance
    with its chain's last time, write the instance back, append a record, commit."""
    store = engine.store
    instance_id = engine.query(limit=1)[0].id
    template = engine.history(instance_id)[-1]

    def one() -> None:
        with store.write() as uow:
            c, _ = uow.instances.lock_for_append(instance_id)
            seq = c.audit_seq + 1
            moved = Instance(
                c.id, c.workflow_id, c.workflow_version, c.state, c.data, c.version + 1,
                c.parent_id, c.created_at, c.updated_at, c.state_entered_at, seq, template.hash,
            )  # fmt: skip
            uow.instances.update(moved, c.version)
            uow.audit.append(AuditRecord(template.instance_id, seq, *template[2:]))

    def pair() -> None:
        one()
        one()

    return pair


def _cpu_us_per_fire(func: Callable[[], Any]) -> float:
    # CPU time, not wall time: nothing here waits for I/O, and on a shared machine wall time
    # counts the time the process was not running at all.
    timer = timeit.Timer(func, timer=time.process_time)
    loops, _ = timer.autorange()  # enough loops for >= 0.2 s of CPU
    return timer.timeit(loops) / loops / 2 * 1e6


def run(*, runs: int, log: str = "off", progress: Any = print) -> dict[str, Any]:
    repeats = max(runs, 5)
    progress(f"(d) fire on the memory store: {repeats} repeats")
    decision_pair, _ = _engine_fire()
    engine, store_pair = _store_fire(log)
    try:
        decision_pair()
        store_pair()
        ops_pair = _store_ops(engine)
        store_us, decision_us, ops_us = [], [], []
        for _ in range(repeats):  # interleaved, one repeat each at a time
            store_us.append(_cpu_us_per_fire(store_pair))
            decision_us.append(_cpu_us_per_fire(decision_pair))
            ops_us.append(_cpu_us_per_fire(ops_pair))
    finally:
        engine.close()
    store, decision, ops = median(store_us), median(decision_us), median(ops_us)
    return {
        "repeats": repeats,
        "memory_store_us_per_fire": [round(x, 2) for x in store_us],
        "decision_us_per_fire": [round(x, 2) for x in decision_us],
        "memory_store_median_us": round(store, 2),
        "decision_median_us": round(decision, 2),
        # the store's own share: its operations for one fire, without the engine around them
        "store_operations_us_per_fire": [round(x, 2) for x in ops_us],
        "store_operations_median_us": round(ops, 2),
        "ratio": round(store / decision, 2),
        "target": f"<= {TARGET}",
        "met": store / decision <= TARGET,
    }
