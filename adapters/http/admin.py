"""``/admin``: what an ``admin`` key may ask of the running service: load the definitions
deployed since it started (``POST /admin/reload``), and migrate running instances to another
definition version (``POST /admin/migrations``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from opcatflow.adapters.http.auth import Caller, require_admin
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import ApiProblem, responses
from opcatflow.adapters.http.schemas import MigrationIn, MigrationOut, ReloadOut
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.migration import Migrator
from opcatflow.engine.migration.convert import load_mapping

router = APIRouter(tags=["admin"])


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    responses=responses("forbidden", "definitions-refused"),
)
async def reload_definitions(
    ctx: Annotated[Api, Depends(api)], who: Annotated[Caller, Depends(require_admin)]
) -> dict[str, Any]:
    """Load the workflow definitions again: the service's files and the versions deployed
    to (or retired in) the database since the last load, without a restart. An invalid new
    set is refused (422, every problem as ``path:line:col: message``) and the service keeps
    running on the old one."""
    report = await ctx.blocking(ctx.engine.reload)
    if not report.reloaded:
        problems = [str(p) for p in report.problems]
        raise ApiProblem(
            "definitions-refused",
            f"the new definitions are invalid; the service keeps the old set: {problems[0]}",
            extra={"problems": problems},
        )
    return report.as_json()


@router.post(
    "/admin/migrations",
    response_model=MigrationOut,
    responses=responses("forbidden", "invalid-plan"),
)
async def migrate_instances(
    body: MigrationIn,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(require_admin)],
) -> dict[str, Any]:
    """Run a migration plan (its YAML text in ``plan``), as ``opcatflow migrate`` does: with
    ``dry_run``, say what would happen to each instance; else migrate each in its own
    transaction (a ``migrated`` record naming the key's actor), listing refusals per
    instance. An invalid plan is answered ``invalid-plan`` with every problem located; so
    are values to convert to register ids that no entry matches and ``mapping`` leaves out
    (nothing moves)."""

    def run() -> dict[str, Any]:
        migrator = Migrator(ctx.engine, actor=who.actor)
        try:
            plan = migrator.load(body.plan, "<plan>")
            mapping = load_mapping(json.dumps(body.mapping), "<mapping>")
            report = migrator.run(plan, dry_run=body.dry_run, batch=body.batch, mapping=mapping)
        except DefinitionError as err:
            problems = [str(p) for p in err.problems]
            raise ApiProblem("invalid-plan", problems[0], extra={"problems": problems}) from None
        return report.as_json()

    return await ctx.blocking(run)
