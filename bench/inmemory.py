"""Part (b): the in-memory cost of one fire, with no store, against bare ``transitions``.

The engine side is what ``Engine.fire`` does in memory per applied transition: ``decide``
(role, data and guard checks, the shared machine moving a throwaway cursor), the audit
changes (``Redactor.changes``) and the hashed audit record (``make_record``) in the format
``Engine.fire`` writes: since format 4 that record carries the hash of the instance row the
change leaves (``state_hash``), so computing it is part of deciding the record. The bare side is
a ``transitions.Machine`` with the same states and transitions, ``auto_transitions=False``,
its model bound once, firing the same triggers. Both ping-pong a -> b -> a, so every fire is a
state change; one loop iteration is two fires.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from transitions import Machine

from bench.common import ACTOR, DATA, ROLE, WORKFLOW, median
from opcatflow.engine import Registry, compile_text
from opcatflow.engine.audit import (
    APPLIED,
    CURRENT_FORMAT,
    GENESIS,
    Redactor,
    make_record,
    state_hash,
)
from opcatflow.engine.firing import Applied, decide

INSTANCE_ID = "00000000-0000-4000-8000-000000000000"


def _engine_fire() -> tuple[Callable[[], None], dict[str, Callable[[], Any]]]:
    wf = compile_text(WORKFLOW.read_text(encoding="utf-8"), str(WORKFLOW), Registry())
    redactor = Redactor(b"k" * 32)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    data = dict(DATA)
    personal = wf.schema.personal

    def one(state: str, trigger: str, seq: int) -> None:
        outcome = decide(
            wf,
            instance_id=INSTANCE_ID,
            state=state,
            data=data,
            trigger=trigger,
            actor=ACTOR,
            role=ROLE,
            supplied={},
            now=now,
        )
        assert isinstance(outcome, Applied)
        changes = redactor.changes(data, outcome.data, personal)
        make_record(
            instance_id=INSTANCE_ID,
            seq=seq,
            at=now,
            actor=ACTOR,
            role=ROLE,
            workflow_id=wf.id,
            workflow_version=wf.version,
            trigger=trigger,
            from_state=state,
            to_state=outcome.state,
            outcome=APPLIED,
            reason=None,
            changes=changes,
            prev_hash=GENESIS,
            format=CURRENT_FORMAT,
            state_hash=state_hash(wf.id, wf.version, outcome.state, seq, outcome.data),
        )

    def pair() -> None:
        one("a", "go", 2)
        one("b", "back", 3)

    def decide_pair() -> None:
        for state, trigger in (("a", "go"), ("b", "back")):
            decide(
                wf,
                instance_id=INSTANCE_ID,
                state=state,
                data=data,
                trigger=trigger,
                actor=ACTOR,
                role=ROLE,
                supplied={},
                now=now,
            )

    def changes_pair() -> None:
        redactor.changes(data, data, personal)
        redactor.changes(data, data, personal)

    def record_pair() -> None:
        for seq in (2, 3):
            make_record(
                instance_id=INSTANCE_ID,
                seq=seq,
                at=now,
                actor=ACTOR,
                role=ROLE,
                workflow_id=wf.id,
                workflow_version=wf.version,
                trigger="go",
                from_state="a",
                to_state="b",
                outcome=APPLIED,
                reason=None,
                changes="{}",
                prev_hash=GENESIS,
                format=CURRENT_FORMAT,
                state_hash=state_hash(wf.id, wf.version, "b", seq, data),
            )

    parts = {"decide": decide_pair, "changes": changes_pair, "make_record": record_pair}
    return pair, parts


class _Model:
    state: str


def _bare_fire() -> Callable[[], None]:
    model = _Model()
    Machine(
        model=model,
        states=["a", "b"],
        transitions=[
            {"trigger": "go", "source": "a", "dest": "b"},
            {"trigger": "back", "source": "b", "dest": "a"},
        ],
        initial="a",
        auto_transitions=False,
    )
    go, back = model.go, model.back  # type: ignore[attr-defined]

    def pair() -> None:
        go()
        back()

    return pair


def _per_fire_us(func: Callable[[], Any], repeats: int) -> list[float]:
    timer = timeit.Timer(func)
    loops, _ = timer.autorange()  # enough loops for >= 0.2 s per repeat
    return [t / loops / 2 * 1e6 for t in timer.repeat(repeat=repeats, number=loops)]


def run(*, runs: int, progress: Any = print) -> dict[str, Any]:
    repeats = max(runs, 5)
    progress(f"(b) in-memory fire: {repeats} repeats")
    engine_pair, parts = _engine_fire()
    bare_pair = _bare_fire()
    engine_pair()
    bare_pair()
    engine_us, bare_us = [], []
    for _ in range(repeats):  # interleaved, one repeat each at a time
        engine_us += _per_fire_us(engine_pair, 1)
        bare_us += _per_fire_us(bare_pair, 1)
    breakdown = {name: round(median(_per_fire_us(f, repeats)), 2) for name, f in parts.items()}
    engine, bare = median(engine_us), median(bare_us)
    return {
        "repeats": repeats,
        "engine_us_per_fire": [round(x, 2) for x in engine_us],
        "bare_transitions_us_per_fire": [round(x, 2) for x in bare_us],
        "engine_median_us": round(engine, 2),
        "bare_median_us": round(bare, 2),
        "engine_breakdown_median_us": breakdown,
        "ratio": round(engine / bare, 2),
        "target": "<= 3.0",
        "met": engine / bare <= 3.0,
    }
