"""``/admin``: what an ``admin`` key may ask of the running service: load the definitions
deployed since it started (``POST /admin/reload``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from opcatflow.adapters.http.auth import Caller, require_admin
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import ApiProblem, responses
from opcatflow.adapters.http.schemas import ReloadOut

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
