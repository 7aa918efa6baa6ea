"""Liveness and readiness, without a key (for load balancers and orchestrators)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import MEDIA_TYPE, ProblemDetails, problem_body
from opcatflow.adapters.http.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
def health() -> dict[str, Any]:
    """The process is up (says nothing about the database)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={
        503: {
            "model": ProblemDetails,
            "content": {MEDIA_TYPE: {}},
            "description": "Database unreachable, or at another schema revision",
        }
    },
)
def ready(ctx: Annotated[Api, Depends(api)]) -> Any:
    """The database answers and is at the schema revision this opcatflow needs."""
    try:
        found = ctx.engine.store.current_revision()
    except Exception as err:  # any driver error means: not ready
        ctx.log.warning("not_ready", error=f"{type(err).__name__}: {err}")
        body = problem_body("store-error", "the database does not answer")
        return JSONResponse(body, 503, media_type=MEDIA_TYPE)
    if found != ctx.schema_revision:
        detail = (
            f"database schema is at {found or 'none'}, this opcatflow needs {ctx.schema_revision}"
        )
        return JSONResponse(problem_body("schema-mismatch", detail), 503, media_type=MEDIA_TYPE)
    return {"status": "ready", "schema_revision": found}
