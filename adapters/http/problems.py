"""Errors as RFC 9457 problem details (``application/problem+json``).

Each engine error code has one stable ``type`` URI, whatever the route; the HTTP status may
depend on the situation (a refusal for the wrong role is a 403, a refused state change a 409).
Bodies carry the reason an operator can act on and never a stack trace: unexpected errors are
logged with their traceback and answered with a bare ``internal-error``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from structlog.typing import FilteringBoundLogger

from opcatflow.engine.erasure_journal import ErasureJournalError
from opcatflow.engine.errors import (
    ConcurrentUpdate,
    DefinitionError,
    InvalidData,
    InvalidFilter,
    InvalidText,
    KeyUnavailable,
    LimitExceeded,
    NotFound,
    OpcatflowError,
    SchemaMismatch,
    StoreError,
    TransitionRefused,
)
from opcatflow.engine.limits import JSON_DEPTH, SIZE_LIMITS

MEDIA_TYPE = "application/problem+json"
PREFIX = "urn:opcatflow:problem:"

# code -> (default status, title). The code is the engine error's ``code`` where there is one.
TYPES: dict[str, tuple[int, str]] = {
    "refused": (409, "Transition refused"),
    "invalid-data": (422, "Invalid instance data"),
    "limit-exceeded": (422, "Input over a limit"),
    "invalid-text": (422, "Text is not valid Unicode"),
    "conflict": (412, "The instance changed since you read it"),
    "not-found": (404, "Not found"),
    "invalid-definition": (500, "Invalid workflow definition"),
    "definitions-refused": (422, "New workflow definitions refused"),
    "invalid-plan": (422, "Invalid migration plan"),
    "schema-mismatch": (503, "Database schema mismatch"),
    "store-error": (503, "Database unavailable"),
    "key-unavailable": (503, "Encryption key unavailable"),
    "erasure-unlisted": (503, "Erasure journal unavailable"),
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Forbidden"),
    "malformed-request": (400, "Malformed request"),
    "invalid-request": (422, "Invalid request"),
    "payload-too-large": (413, "Request body too large"),
    "method-not-allowed": (405, "Method not allowed"),
    "idempotency-key-reused": (422, "Idempotency key reused for another request"),
    "untrusted-host": (400, "Untrusted Host header"),
    "too-many-requests": (429, "Too many failed authentications"),
    "internal-error": (500, "Internal error"),
}

# How a refusal's kind maps to a status (role refusals become a bare 403, see below).
REFUSAL_STATUS = {"state": 409, "guard": 409, "trigger": 422, "data": 422}

FORBIDDEN_DETAIL = "This API key may not do this."


def problem_type(code: str) -> str:
    return PREFIX + code


class ProblemDetails(BaseModel):
    """An RFC 9457 problem; extension members depend on the type (see docs/http-api.md)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A stable URI, urn:opcatflow:problem:<code>.")
    title: str
    status: int
    detail: str | None = None


@dataclass
class ApiProblem(Exception):
    """Raised by routes for problems that are not engine errors."""

    code: str
    detail: str | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def problem_body(
    code: str, detail: str | None = None, status: int | None = None, **extra: Any
) -> dict[str, Any]:
    default_status, title = TYPES[code]
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status or default_status,
    }
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_response(
    code: str,
    detail: str | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(code, detail, status, **extra)
    return JSONResponse(body, status_code=body["status"], headers=headers, media_type=MEDIA_TYPE)


def refusal_body(err: TransitionRefused) -> dict[str, Any]:
    """A refusal as a problem. A wrong role reveals nothing (not even which roles may)."""
    if err.kind == "role":
        return problem_body("forbidden", FORBIDDEN_DETAIL)
    return problem_body(
        "refused",
        err.reason,
        REFUSAL_STATUS.get(err.kind, 409),
        kind=err.kind,
        trigger=err.trigger,
    )


def engine_error_body(err: OpcatflowError) -> dict[str, Any]:
    """The problem for an engine error (the route's own context is not needed)."""
    if isinstance(err, TransitionRefused):
        return refusal_body(err)
    if isinstance(err, InvalidData):
        return problem_body("invalid-data", str(err), errors=list(err.errors))
    if isinstance(err, LimitExceeded):
        limit = err.limit
        return problem_body(
            "limit-exceeded",
            str(err),
            413 if limit.name in SIZE_LIMITS else None,
            limit=limit.name,
            maximum=limit.maximum,
            unit=limit.unit,
            location=err.where,
        )
    if isinstance(err, InvalidText):
        return problem_body("invalid-text", str(err), location=err.where)
    if isinstance(err, ConcurrentUpdate):
        return problem_body(
            "conflict",
            str(err),
            current_version=err.actual,
            expected_version=err.expected,
        )
    if isinstance(err, NotFound):
        return problem_body("not-found", str(err))
    if isinstance(err, InvalidFilter):
        return problem_body("invalid-request", str(err), parameter=err.name, value=err.value)
    if isinstance(err, DefinitionError):
        return problem_body("invalid-definition", "a stored workflow definition is invalid")
    if isinstance(err, SchemaMismatch):
        return problem_body("schema-mismatch", str(err))
    if isinstance(err, KeyUnavailable):  # where the keys live is for the server's log only
        return problem_body(
            "key-unavailable",
            f"personal values cannot be read or written: key-encryption key {err.key_id} is "
            "unavailable to the server; its operator restores it (see the server's log)",
            key_id=err.key_id,
        )
    if isinstance(err, StoreError):
        return problem_body("store-error", "the database is unavailable; try again later")
    if isinstance(err, ErasureJournalError):  # its path is for the server's log only
        return problem_body(
            "erasure-unlisted",
            "nothing was erased: the server cannot list the erasure in its erasure journal "
            "(beside its key file); its operator fixes it (see the server's log)",
        )
    return problem_body("internal-error")


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], headers=headers, media_type=MEDIA_TYPE)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def install(app: FastAPI, log: FilteringBoundLogger) -> None:
    """Turn every error the app can raise into a problem response."""

    async def on_api_problem(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, ApiProblem)
        body = problem_body(err.code, err.detail, err.status, **err.extra)
        return _json(body, err.headers or None)

    async def on_engine_error(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, OpcatflowError)
        if isinstance(err, StoreError | DefinitionError | KeyUnavailable | ErasureJournalError):
            log.error("http_engine_error", path=request.url.path, error=str(err))
        return _json(engine_error_body(err))

    async def on_validation(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        errors = list(err.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _json(problem_body("malformed-request", "the body is not valid JSON"))
        return _json(
            problem_body(
                "invalid-request",
                "the request does not match the API's schema",
                errors=[
                    {"location": _location(tuple(e.get("loc", ()))), "message": str(e["msg"])}
                    for e in errors
                ],
            )
        )

    async def on_http(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, StarletteHTTPException)
        codes = {
            400: "malformed-request",
            401: "unauthorized",
            403: "forbidden",
            404: "not-found",
            405: "method-not-allowed",
            413: "payload-too-large",
            429: "too-many-requests",
        }
        code = codes.get(err.status_code, "malformed-request" if err.status_code < 500 else "")
        if not code:
            return _json(problem_body("internal-error"))
        cause = err.__cause__  # FastAPI reading a JSON body
        if isinstance(cause, UnicodeDecodeError):
            detail = f"the body is not UTF-8 text (byte {cause.start})"
            return _json(problem_body("invalid-text", detail, location="body"))
        if isinstance(cause, RecursionError):  # nested past Python's JSON parser
            return _json(engine_error_body(LimitExceeded(JSON_DEPTH, "body")))
        detail = err.detail if isinstance(err.detail, str) else None
        status = err.status_code if err.status_code < 500 else None
        return _json(problem_body(code, detail, status), dict(err.headers or {}) or None)

    async def on_unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error(  # the traceback goes to the operators' log, never to the client
            "http_unexpected_error",
            path=request.url.path,
            error=f"{type(err).__name__}: {err}",
            traceback="".join(traceback.format_exception(err)),
        )
        return _json(problem_body("internal-error"))

    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(OpcatflowError, on_engine_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


ALWAYS = (
    "unauthorized",
    "too-many-requests",
    "malformed-request",
    "untrusted-host",
    "invalid-request",
    "payload-too-large",
)


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route may answer with (see
    :func:`problem_content` for their media type)."""
    result: dict[int | str, dict[str, Any]] = {}
    for code in dict.fromkeys((*codes, *ALWAYS)):
        status, title = TYPES[code]
        entry = result.setdefault(
            status,
            {"model": ProblemDetails, "content": {MEDIA_TYPE: {}}, "description": ""},
        )
        entry["description"] = "; ".join(filter(None, [entry["description"], title]))
    return result


def problem_content(document: dict[str, Any]) -> dict[str, Any]:
    """Say ``application/problem+json`` (not FastAPI's ``application/json``) for every
    problem response of an OpenAPI document; returns the document."""
    ref = "#/components/schemas/ProblemDetails"
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if MEDIA_TYPE in content:
                    response["content"] = {MEDIA_TYPE: {"schema": {"$ref": ref}}}
    return document
