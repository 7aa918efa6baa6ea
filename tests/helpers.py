"""Helpers shared by the tests: the rules of the test definitions (tests/definitions/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opcatflow.engine import Engine, GuardRefusal, Registry, RuleContext
from opcatflow.engine.rows import OutboxEntry, OutboxStatus


def make_registry() -> Registry:
    registry = Registry()

    @registry.guard("not_friday", reason="nothing is approved on a Friday")
    def not_friday(ctx: RuleContext) -> bool:
        return ctx.now.weekday() != 4

    @registry.guard("explodes", reason="never shown")
    def explodes(ctx: RuleContext) -> bool:
        raise RuntimeError("rule bug")

    @registry.guard("needs_title", reason="unused")
    def needs_title(ctx: RuleContext) -> bool:
        if not ctx.data.get("title"):
            raise GuardRefusal("a title is needed")
        return True

    @registry.action("count_edit", writes=["edits"])
    def count_edit(ctx: RuleContext) -> None:
        ctx.data["edits"] = (ctx.data.get("edits") or 0) + 1  # a lost update would lose a count

    @registry.action("stamp_review", writes=["approved_by"])
    def stamp_review(ctx: RuleContext) -> None:
        ctx.data["approved_by"] = None  # entering review clears a previous approval

    return registry


EXAMPLE_DIR = Path(__file__).parent / "definitions"


def edit_many(url: str, instance_id: str, times: int, use_versions: bool) -> tuple[int, int]:
    """Fire ``edit`` ``times`` times from this process; returns (applied, conflicts).

    With ``use_versions`` each call passes the version just read, so racing writers conflict.
    Importable by spawned processes (tests/ is on their sys.path).
    """
    from opcatflow.engine import ConcurrentUpdate, Engine

    applied = conflicts = 0
    with Engine.open(url, [EXAMPLE_DIR], make_registry(), create=False) as engine:
        for _ in range(times):
            expected = engine.get(instance_id).version if use_versions else None
            try:
                engine.fire(instance_id, "edit", actor="w", role="clerk", expected_version=expected)
                applied += 1
            except ConcurrentUpdate:
                conflicts += 1
    return applied, conflicts


_STARTING_GATE: dict[str, Any] = {}


def set_starting_gate(barrier: Any) -> None:
    """Process pool initializer: the barrier ``open_at_once`` waits on."""
    _STARTING_GATE["barrier"] = barrier


def open_at_once(url: str) -> str | None:
    """Wait until every worker of the pool is here, then open an engine on ``url`` (creating
    the schema of a new database); returns the schema revision it found open."""
    from opcatflow.engine import Engine

    _STARTING_GATE["barrier"].wait(timeout=60)
    with Engine.open(url, [EXAMPLE_DIR], make_registry()) as engine:
        return engine.store.current_revision()


# The outcomes of the records a start or a trigger writes; the others are the records of
# the obligations (deadline occurrences) those changes started, met or ended.
CHANGE_OUTCOMES = ("started", "applied", "refused", "opened")


def changes(engine: Any, instance_id: str) -> list[Any]:
    """The audit records of an instance's starts and triggers, in order."""
    return [r for r in engine.history(instance_id) if r.outcome in CHANGE_OUTCOMES]


def outbox_of(engine: Engine, instance_id: str) -> list[OutboxEntry]:
    """The outbox messages about ``instance_id``, oldest first, read through the engine's
    store: their payloads are sealed at rest, so only it can open them."""
    with engine.store.read() as uow:
        every = uow.outbox.listing(list(OutboxStatus), limit=1_000_000)
    return sorted((m for m in every if m.instance_id == instance_id), key=lambda m: m.id)
