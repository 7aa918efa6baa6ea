"""Part (d): a fire on the in-memory store against the in-memory decision alone.

The store side is ``Engine.fire`` on ``Engine.open("memory:")``: the whole write path (unit of
work, instance lock and version check, the decision, the audit record appended, the instance
updated, hooks, commit, the log call) with nothing durable under it.

The decision side is the same engine's own decision of each fire, with nothing written:
``Engine.decide_fire`` (the role chosen among the caller's, the data contract, guards and
actions, the law's minimum periods, register references, the children to open) and
``Writes.plan_applied`` (the new row, its hash, the audit changes and the hashed record), both
on one read unit of work of the same store, opened once (no transaction, no lock). ``Engine.fire`` runs
these very two functions, so the ratio is what storing costs on top of deciding; target: at
most 2x.

For comparison the result also gives part (b)'s narrower decision (``firing.decide`` under one
role, ``Redactor.changes``, ``make_record``): it leaves out the engine's own checks around
``decide`` and the row, so against it the store looks costlier than it is.

Every side ping-pongs a -> b -> a (one loop iteration is two fires), interleaved, median CPU
time per fire.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

from bench.common import ACTOR, DATA, ROLE, WORKFLOW, WORKFLOW_ID, bench_logger, median
from bench.inmemory import _engine_fire
from opcatflow.engine import AuditRecord, Engine, Instance, Registry
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.firing import Applied

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


def _engine_decision(engine: Engine) -> Callable[[], None]:
    """The engine's decision of the two fires of a pair, nothing stored."""
    store, writes = engine.store, engine._writes
    instance_id = engine.query(limit=1)[0].id
    now = engine.clock.now()
    roles = (ROLE,)

    def decided(uow: SealedUnitOfWork, current: Instance, trigger: str) -> Instance:
        decision = engine.decide_fire(uow, current, trigger, actor=ACTOR, roles=roles, now=now)
        outcome = decision.outcome
        assert isinstance(outcome, Applied)
        plan = writes.plan_applied(
            uow,
            decision.workflow,
            current,
            outcome,
            decision.children,
            trigger=trigger,
            actor=ACTOR,
            role=decision.role,
            now=now,
            reason=None,
        )
        return plan.instance

    # One read unit of work for every pair (the memory store's holds no lock), with the
    # instance read through it as a fire reads it: the row's hash then reuses what sealing
    # found, as in the fire, rather than working it out afresh each time.
    with store.read() as uow:
        at_a = uow.instances.get(instance_id)
        assert at_a.state == "a"
        at_b = decided(uow, at_a, "go")

    def pair() -> None:
        decided(uow, at_a, "go")
        decided(uow, at_b, "back")

    return pair


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
    narrow_pair, _ = _engine_fire()
    engine, store_pair = _store_fire(log)
    try:
        narrow_pair()
        store_pair()  # back in state a, where the decision side starts
        decision_pair = _engine_decision(engine)
        ops_pair = _store_ops(engine)
        store_us, decision_us, narrow_us, ops_us = [], [], [], []
        for _ in range(repeats):  # interleaved, one repeat each at a time
            store_us.append(_cpu_us_per_fire(store_pair))
            decision_us.append(_cpu_us_per_fire(decision_pair))
            narrow_us.append(_cpu_us_per_fire(narrow_pair))
            ops_us.append(_cpu_us_per_fire(ops_pair))
    finally:
        engine.close()
    store, decision, ops = median(store_us), median(decision_us), median(ops_us)
    narrow = median(narrow_us)
    return {
        "repeats": repeats,
        "memory_store_us_per_fire": [round(x, 2) for x in store_us],
        "decision_us_per_fire": [round(x, 2) for x in decision_us],
        "memory_store_median_us": round(store, 2),
        "decision_median_us": round(decision, 2),
        "part_b_decision_us_per_fire": [round(x, 2) for x in narrow_us],
        "part_b_decision_median_us": round(narrow, 2),
        "ratio_to_part_b_decision": round(store / narrow, 2),
        # the store's own share: its operations for one fire, without the engine around them
        "store_operations_us_per_fire": [round(x, 2) for x in ops_us],
        "store_operations_median_us": round(ops, 2),
        "ratio": round(store / decision, 2),
        "target": f"<= {TARGET}",
        "met": store / decision <= TARGET,
    }
