"""The FastAPI application over one engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from fastapi import FastAPI
from structlog.typing import FilteringBoundLogger

from opcatflow.adapters.http import (
    admin,
    docs,
    health,
    instances,
    obligations,
    operations,
    privacy,
    problems,
    reports,
    workflows,
)
from opcatflow.adapters.http.auth import KeyCache
from opcatflow.adapters.http.context import Api, ApiConfig
from opcatflow.adapters.http.fastpath import FireFastPath
from opcatflow.adapters.http.hosts import TrustedHosts
from opcatflow.adapters.http.idempotency import IdempotencyRecords
from opcatflow.adapters.http.keys import ApiKeys
from opcatflow.adapters.http.limits import AUTH_FAILURE_WINDOW
from opcatflow.adapters.http.middleware import BodyLimit, RequestLog
from opcatflow.adapters.http.throttle import FailureLimit
from opcatflow.engine.logs import default_logger
from opcatflow.engine.runtime import Engine

DESCRIPTION = """\
Drive opcatflow workflows from other systems.

Every call but `/health` and `/ready` needs an API key (`opcatflow apikey create --actor NAME
--role ROLE...`), sent as `Authorization: Bearer opf_...`; it acts as the key's actor, in one
of its roles, and the engine decides whether that role may. Personal fields are returned only
to the roles the workflow definition names (`personal_visible_to`, or a field's `visible_to`);
others see `"[withheld]"`.

Every instance response carries an `ETag` (its version): send it back as `If-Match` on a
transition and a stale version answers 412. Send an `Idempotency-Key` on a POST and a retry
gets the first response instead of acting twice.

Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is one of
`urn:opcatflow:problem:` + `refused`, `invalid-data`, `conflict`, `not-found`,
`invalid-definition`, `definitions-refused` (a reload found the new definitions invalid: the
service keeps the old set), `invalid-plan` (a migration plan that does not validate),
`schema-mismatch`, `store-error`, `unauthorized`, `forbidden`,
`malformed-request`, `invalid-request`, `payload-too-large`, `method-not-allowed`,
`idempotency-key-reused`, `untrusted-host` (400: the `Host` header names a host the server
was not told to answer to), `too-many-requests` (429, with `Retry-After`: too many failed
authentications from one address), `internal-error`.
"""


def _version() -> str:
    try:
        return package_version("opcatflow")
    except PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "0"


def _build(config: ApiConfig, log: FilteringBoundLogger, lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="opcatflow",
        version=_version(),
        description=DESCRIPTION,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: docs.install serves ours
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        servers=[{"url": config.public_url}] if config.public_url else None,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry: this service exports none (its log is its record), and
        # left on, FastAPI looks for a provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app, log)
    # Routes are matched in order: the busiest first.
    for module in (instances, workflows, operations, obligations, privacy, reports, admin, health):
        app.include_router(module.router)
    docs.install(app)
    # Added last, so it runs first: an oversized body never reaches routing, and a request
    # naming an untrusted Host is refused before anything else (but still logged). The fire
    # fast path, added first, runs after all three, just before FastAPI's routing.
    app.add_middleware(FireFastPath)
    app.add_middleware(BodyLimit, max_body=config.max_body)
    app.add_middleware(TrustedHosts, patterns=config.hosts())
    app.add_middleware(RequestLog, log=log)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.problem_content(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app(
    engine: Engine,
    config: ApiConfig | None = None,
    *,
    logger: FilteringBoundLogger | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """The HTTP API over ``engine`` (which the caller opens and closes).

    Args:
        config: limits (body size, idempotency retention, how long a key is trusted).
        logger: a structlog logger for request and error events (default: the engine's).
        on_shutdown: called when the server running the app shuts down (to close the engine
            of a worker process).
    """
    config = config or ApiConfig()
    log = logger or engine.log
    lifespan = None
    if on_shutdown is not None:
        close = on_shutdown

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            close()

    app = _build(config, log, lifespan)
    app.state.api = Api(
        engine=engine,
        keys=ApiKeys(engine.store, engine.clock),
        idempotency=IdempotencyRecords(engine.store, engine.clock, config.idempotency_retention),
        config=config,
        log=log,
        schema_revision=engine.store.head_revision(),
        key_cache=KeyCache(config.key_cache_seconds),
        executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="opcatflow-api"),
        auth_failures=FailureLimit(config.auth_failure_limit, AUTH_FAILURE_WINDOW),
    )
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (the same for every engine; docs/openapi.json is a copy)."""
    document: dict[str, Any] = _build(ApiConfig(), default_logger("opcatflow")).openapi()
    return document
