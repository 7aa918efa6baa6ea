"""``/workflows``: what can be run, its definition, its data schema and its diagram; and
``/schema/definition``, the JSON Schema of the definition format. Any key may read them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from opcatflow.adapters.http.auth import Caller, caller
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import responses
from opcatflow.adapters.http.schemas import WorkflowOut
from opcatflow.adapters.http.views import data_schema
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import WorkflowDefinition
from opcatflow.engine.diagram import dot, mermaid

router = APIRouter(tags=["workflows"])

Version = Annotated[
    int | None,
    Query(ge=1, le=1_000_000, description="A definition version; default: the latest loaded."),
]


class DiagramFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


def summary(wf: CompiledWorkflow) -> dict[str, Any]:
    d = wf.definition
    return {
        "id": wf.id,
        "version": wf.version,
        "title": d.title,
        "description": d.description,
        "roles": dict(d.roles),
        "start_roles": sorted(wf.start_roles),
        "states": list(d.states),
        "initial": wf.initial,
        "finals": sorted(wf.finals),
        "triggers": sorted(wf.triggers),
        "personal_fields": sorted(wf.schema.personal),
    }


@router.get("/workflows", response_model=list[WorkflowOut], responses=responses())
def list_workflows(
    ctx: Annotated[Api, Depends(api)], who: Annotated[Caller, Depends(caller)]
) -> list[dict[str, Any]]:
    """Every workflow loaded, at its latest version."""
    return [summary(wf) for wf in sorted(ctx.engine.catalog.latest(), key=lambda w: w.id)]


@router.get(
    "/workflows/{workflow_id}",
    response_model=dict[str, Any],
    responses=responses("not-found"),
)
def get_definition(
    workflow_id: str,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    version: Version = None,
) -> dict[str, Any]:
    """The definition, as JSON (its format: ``GET /schema/definition``)."""
    wf = ctx.engine.workflow(workflow_id, version)
    result: dict[str, Any] = wf.definition.model_dump(mode="json", exclude_none=True, by_alias=True)
    return result


@router.get(
    "/workflows/{workflow_id}/schema",
    response_model=dict[str, Any],
    responses=responses("not-found"),
)
def get_data_schema(
    workflow_id: str,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    version: Version = None,
) -> dict[str, Any]:
    """A JSON Schema of the instance data (what ``data`` of a start may hold); personal
    fields are marked ``x-personal``."""
    wf = ctx.engine.workflow(workflow_id, version)
    required = dict.fromkeys((*wf.schema.required, *wf.definition.start.requires))
    return data_schema(wf.id, dict(wf.definition.fields), required)


@router.get(
    "/workflows/{workflow_id}/diagram",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **responses("not-found"),
    },
)
def get_diagram(
    workflow_id: str,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    version: Version = None,
    format: Annotated[DiagramFormat, Query(description="mermaid or dot")] = DiagramFormat.MERMAID,
) -> PlainTextResponse:
    """The workflow as a Mermaid ``stateDiagram-v2`` (default) or Graphviz DOT."""
    wf = ctx.engine.workflow(workflow_id, version)
    text = mermaid(wf) if format is DiagramFormat.MERMAID else dot(wf)
    return PlainTextResponse(text)


@router.get("/schema/definition", response_model=dict[str, Any], responses=responses())
def get_definition_schema(who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
    """The JSON Schema of the workflow definition format (for editors and tools)."""
    return WorkflowDefinition.model_json_schema()
