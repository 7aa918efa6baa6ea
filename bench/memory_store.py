"""Part (d): a fire on the in-memory store against the in-memory decision alone.

The store side is ``Engine.fire`` on ``Engine.open("memory:")``: the whole write path (unit of
work, instance lock and version check, the decision, the audit record appended, the instance
updated, hooks, commit, the log call) with nothing durable under it. The decision side is part
(b)'s engine fire: ``firing.decide``, ``Redactor.changes`` and ``make_record``, no store at all.
The ratio is what the store's bookkeeping costs on top of deciding; target: at most 2x. Both
ping-pong a -> b -> a (one loop iteration is two fires), interleaved, median per fire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import ACTOR, DATA, ROLE, WORKFLOW, WORKFLOW_ID, bench_logger, median
from bench.inmemory import _engine_fire, _per_fire_us
from opcatflow.engine import Engine, Registry

TARGET = 2.0


def _store_fire(log: str) -> tuple[Engine, Callable[[], None]]:
    engine = Engine.open("memory:", [WORKFLOW], Registry(), logger=bench_logger(log))
    instance_id = engine.start(WORKFLOW_ID, actor=ACTOR, role=ROLE, data=DATA).id
    fire = engine.fire

    def pair() -> None:
        fire(instance_id, "go", actor=ACTOR, role=ROLE)
        fire(instance_id, "back", actor=ACTOR, role=ROLE)

    return engine, pair


def run(*, runs: int, log: str = "off", progress: Any = print) -> dict[str, Any]:
    repeats = max(runs, 5)
    progress(f"(d) fire on the memory store: {repeats} repeats")
    decision_pair, _ = _engine_fire()
    engine, store_pair = _store_fire(log)
    try:
        decision_pair()
        store_pair()
        store_us, decision_us = [], []
        for _ in range(repeats):  # interleaved, one repeat each at a time
            store_us += _per_fire_us(store_pair, 1)
            decision_us += _per_fire_us(decision_pair, 1)
    finally:
        engine.close()
    store, decision = median(store_us), median(decision_us)
    return {
        "repeats": repeats,
        "memory_store_us_per_fire": [round(x, 2) for x in store_us],
        "decision_us_per_fire": [round(x, 2) for x in decision_us],
        "memory_store_median_us": round(store, 2),
        "decision_median_us": round(decision, 2),
        "ratio": round(store / decision, 2),
        "target": f"<= {TARGET}",
        "met": store / decision <= TARGET,
    }
