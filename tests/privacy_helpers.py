"""Helpers of the privacy tests: the test workflows (a complaint, a visit, a reprisal case,
each naming its data subject) and an engine over them."""

from __future__ import annotations

from conftest import DEFINITIONS

from opcatflow.engine import Engine, FrozenClock
from opcatflow.workflows import registry

PRIVACY = DEFINITIONS / "privacy"


def privacy_engine(url: str, clock: FrozenClock) -> Engine:
    return Engine.open(url, [PRIVACY], registry, clock=clock)


def complaint(engine: Engine, person: str = "Ana Pereira", **more: object) -> str:
    data = {"reference": "C-1", "complainant": person, "story": f"{person} was beaten", **more}
    return engine.start("p_complaint", actor="clerk.1", role="clerk", data=data, reason="filed").id
