"""The bundled OPCAT workflow definitions (YAML beside this file) and the rules they name.

``migrations/`` holds the plan shipped with each change to a bundled workflow, named
``<workflow>-<from>-<to>.yaml``: it moves the instances still running on the previous
version (whose copy the database keeps) to the new one (``opcatflow migrate complaint-3-4``).
"""

from __future__ import annotations

from pathlib import Path

from opcatflow.workflows import engagement as _engagement  # noqa: F401  (registers its rules)
from opcatflow.workflows import recommendation_rules as _recommendation_rules  # noqa: F401
from opcatflow.workflows import register_rules as _register_rules  # noqa: F401  (registers)
from opcatflow.workflows import reprisal_rules as _reprisal_rules  # noqa: F401  (registers)
from opcatflow.workflows import visit_rules as _visit_rules  # noqa: F401  (registers its rules)
from opcatflow.workflows import visit_team as _visit_team  # noqa: F401  (registers its rules)
from opcatflow.workflows.reporting.sources import register_sources
from opcatflow.workflows.rules import registry

register_sources(registry)  # what the reports read: kept in the report projection

BUNDLED = Path(__file__).parent
PLANS = BUNDLED / "migrations"


def shipped_plans() -> dict[str, Path]:
    """The migration plans shipped with the bundled workflows, by name (``complaint-3-4``)."""
    return {path.stem: path for path in sorted(PLANS.glob("*.yaml"))}


__all__ = ["BUNDLED", "PLANS", "registry", "shipped_plans"]
