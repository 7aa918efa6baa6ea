"""``GET /reports/recommendations`` and ``GET /reports/annual``: the numbers of ``opcatflow
report``, from the same function, as JSON (default), CSV or a self-contained HTML page.

A key may read a report when its roles may read every workflow the report counts (an admin
key always): the counts hold no personal value, but which cases exist is still the NPM's."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from opcatflow.adapters.http.auth import Caller, caller, forbidden
from opcatflow.adapters.http.context import Api, api
from opcatflow.adapters.http.problems import responses
from opcatflow.adapters.reports.csvfile import report_csv
from opcatflow.adapters.reports.html import report_html
from opcatflow.workflows.reporting import service
from opcatflow.workflows.reporting.model import Report
from opcatflow.workflows.reporting.sources import (
    COMPLAINT,
    RECOMMENDATION,
    REFERRAL,
    REPRISAL,
    VISIT,
)

router = APIRouter(tags=["reports"])

ANNUAL_READS = (VISIT, COMPLAINT, RECOMMENDATION, REPRISAL, REFERRAL)
CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        }
    }
}


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def _require(ctx: Api, who: Caller, workflows: tuple[str, ...]) -> None:
    catalog = ctx.engine.catalog
    for workflow in workflows:
        if catalog.versions(workflow) and not who.may_read(catalog.get(workflow)):
            raise forbidden()


def _answer(report: Report, fmt: ReportFormat) -> Response:
    document = report.as_json()
    if fmt is ReportFormat.CSV:
        return PlainTextResponse(report_csv(document), media_type="text/csv")
    if fmt is ReportFormat.HTML:
        return HTMLResponse(report_html(document))
    return JSONResponse(document)


FormatQuery = Annotated[ReportFormat, Query(description="json, csv or html")]
YearQuery = Annotated[int | None, Query(ge=service.FIRST_YEAR, le=9999)]


@router.get(
    "/reports/recommendations",
    response_class=Response,
    responses={**CONTENT, **responses("forbidden", "invalid-request")},
)
async def recommendations_report(
    *,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    by: Annotated[str, Query(max_length=200, description="Dimensions, comma-separated.")] = (
        "authority,status"
    ),
    year: YearQuery = None,
    on: Annotated[date | None, Query(description="The day the status is taken.")] = None,
    format: FormatQuery = ReportFormat.JSON,
) -> Response:
    """Recommendations by place, authority, theme, source, status and year (small counts
    shown as ``<5``, complementary cells as ``x``)."""
    _require(ctx, who, (RECOMMENDATION,))
    dimensions = service.parse_by(by)
    report: Report = await ctx.blocking(
        lambda: service.recommendations(ctx.engine, dimensions, year=year, on=on)
    )
    return _answer(report, format)


@router.get(
    "/reports/annual",
    response_class=Response,
    responses={**CONTENT, **responses("forbidden", "invalid-request")},
)
async def annual_report(
    *,
    ctx: Annotated[Api, Depends(api)],
    who: Annotated[Caller, Depends(caller)],
    year: Annotated[int, Query(ge=service.FIRST_YEAR, le=9999)],
    format: FormatQuery = ReportFormat.JSON,
) -> Response:
    """The annual report's statistics for ``year``."""
    _require(ctx, who, ANNUAL_READS)
    report: Report = await ctx.blocking(lambda: service.annual(ctx.engine, year))
    return _answer(report, format)
