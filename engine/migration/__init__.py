"""Moving running instances from one definition version to another, by a plan file."""

from __future__ import annotations

from opcatflow.engine.migration.carry import TimerMove, carry_timers
from opcatflow.engine.migration.plan import Plan, load_plan
from opcatflow.engine.migration.run import InstanceOutcome, MigrationReport, Migrator

__all__ = [
    "InstanceOutcome",
    "MigrationReport",
    "Migrator",
    "Plan",
    "TimerMove",
    "carry_timers",
    "load_plan",
]
