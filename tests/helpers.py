"""Helpers shared by the tests: the rules of the test definitions (tests/definitions/)."""

from __future__ import annotations

from pathlib import Path

from opcatflow.engine import GuardRefusal, Registry, RuleContext


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

    @registry.action("stamp_review")
    def stamp_review(ctx: RuleContext) -> None:
        ctx.data["approved_by"] = None  # entering review clears a previous approval

    return registry


EXAMPLE_DIR = Path(__file__).parent / "definitions"
