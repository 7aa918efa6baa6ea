"""``opcatflow serve``: the HTTP API, the deadline scheduler and the outbox dispatcher in one
process, logging JSON lines.

The engine is built like every command's (``Settings.engine``: the outbox hook when
notifications are configured), and the background work is ``opcatflow worker``'s (the
scheduler, with the dispatcher as a periodic job), plus the purge of expired idempotency
records. With ``--workers N`` uvicorn runs N API processes (each opens its own engine, from
the settings this process hands them in the environment); the scheduler and the dispatcher
still run once, in this process. On PostgreSQL, run as many ``serve`` and ``worker``
processes as you like: timers and messages are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.deadlines import (
    RELOAD_CHECK,
    ReloadCheck,
    background,
    poll_catalogue,
    reload_on_hangup,
)
from opcatflow.adapters.cli.options import LogFormat, LogLevel, Settings, settings
from opcatflow.adapters.http.keys import ADMIN, ApiKeys
from opcatflow.adapters.http.limits import DEFAULT_AUTH_FAILURES, DEFAULT_MAX_BODY
from opcatflow.engine.runtime import Engine
from opcatflow.engine.scheduler import SCHEDULER
from opcatflow.engine.worker import PeriodicJob

if TYPE_CHECKING:  # FastAPI and uvicorn load only when serving, not for every command
    from fastapi import FastAPI

    from opcatflow.adapters.http.context import ApiConfig

ENV = "OPCATFLOW_SERVE"  # the settings handed to --workers processes
PURGE_SECONDS = 3600.0
EXAMPLE_KEY = Path("example.key")
WILDCARDS = ("0.0.0.0", "::", "")  # listening on every address names no host to trust


def log_config(level: LogLevel) -> dict[str, Any]:
    """``logging.config`` for uvicorn and APScheduler: JSON lines on standard error, in the
    same shape as the engine's structlog events."""
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        "foreign_pre_chain": [
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
    }
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["stderr"], "level": level.value.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {"stderr": handler},
        "loggers": dict.fromkeys(("uvicorn", "uvicorn.error", "apscheduler"), logger),
    }


def _settings_json(opts: Settings, config: ApiConfig, reload_check: float) -> str:
    return json.dumps(
        {
            "db": opts.db,
            "workflows": [str(p) for p in opts.workflows],
            "settings": str(opts.npm_settings) if opts.npm_settings else None,
            "log_level": opts.log_level.value,
            "max_body": config.max_body,
            "retention_seconds": config.idempotency_retention.total_seconds(),
            "public_url": config.public_url,
            "trusted_hosts": list(config.trusted_hosts),
            "auth_failure_limit": config.auth_failure_limit,
            "reload_check": reload_check,
        }
    )


def worker_app() -> FastAPI:
    """The app of one ``--workers`` process (uvicorn's factory), from ``$OPCATFLOW_SERVE``."""
    from opcatflow.adapters.http.app import create_app
    from opcatflow.adapters.http.context import ApiConfig

    raw = json.loads(os.environ[ENV])
    opts = Settings(
        db=raw["db"],
        workflows=tuple(Path(p) for p in raw["workflows"]),
        npm_settings=Path(raw["settings"]) if raw["settings"] else None,
        log_format=LogFormat.JSON,
        log_level=LogLevel(raw["log_level"]),
    )
    config = ApiConfig(
        max_body=raw["max_body"],
        idempotency_retention=timedelta(seconds=raw["retention_seconds"]),
        public_url=raw["public_url"],
        trusted_hosts=tuple(raw["trusted_hosts"]),
        auth_failure_limit=raw["auth_failure_limit"],
    )
    stack = ExitStack()
    engine = stack.enter_context(opts.engine())  # as every command builds it
    # uvicorn's supervisor answers SIGHUP by replacing these processes (which load the
    # catalogue afresh); between restarts each one checks the database on its own.
    checking = threading.Event()
    stack.callback(checking.set)
    seconds = float(raw.get("reload_check", RELOAD_CHECK))
    threading.Thread(target=poll_catalogue, args=(engine, seconds, checking), daemon=True).start()
    return create_app(engine, config, on_shutdown=stack.close)


def seed_example(engine: Engine, key_file: Path) -> str | None:
    """A complaint to look at and a key to look with, on first start (``--example``).

    Returns:
        The new key, or ``None`` when ``key_file`` already holds one.
    """
    if "complaint" in [wf.id for wf in engine.catalog.latest()] and not engine.query(
        workflow="complaint", limit=1
    ):
        engine.start(
            "complaint",
            actor="example",
            role="intake",
            data={
                "source": "detained_person",
                "channel": "during_visit",
                "received_on": engine.today().isoformat(),
                "persons": [{"ref": "P1", "name": "Tomás Varga"}],
                "summary": "Struck by two officers in cell 14 on 27 February.",
            },
            reason="example seeded by `opcatflow serve --example`",
        )
    if key_file.exists():
        return None
    roles = sorted({r for wf in engine.catalog.latest() for r in wf.roles} - {SCHEDULER})
    _, token = ApiKeys(engine.store, engine.clock).create(
        "example", [*roles, ADMIN], note="opcatflow serve --example"
    )
    key_file.write_text(token + "\n", "utf-8")
    key_file.chmod(0o600)
    return token


def api_config(host: str, public_url: str | None, trusted: list[str], **limits: Any) -> ApiConfig:
    """The API's settings from ``serve``'s options: the Host names it answers to are the
    address it listens on (unless a wildcard), the local names, the public URL's host and
    ``--trusted-host``.

    Raises:
        typer.BadParameter: a public URL that is not an absolute http(s) URL.
    """
    from opcatflow.adapters.http.context import ApiConfig
    from opcatflow.adapters.http.hosts import LOCAL_HOSTS

    bound = () if host in WILDCARDS else (host.strip("[]").lower(),)
    hosts = tuple(dict.fromkeys((*bound, *LOCAL_HOSTS, *trusted)))
    try:
        return ApiConfig(public_url=public_url, trusted_hosts=hosts, **limits)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--public-url") from None


def serve(
    ctx: typer.Context,
    *,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8000,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database (as the global --db): a SQLite file, created and migrated on first "
            "start, or a postgresql:// URL.",
            metavar="PATH|URL",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="API processes (uvicorn workers).")
    ] = 1,
    sweep: Annotated[
        float,
        typer.Option("--sweep", min=0.1, help="Seconds between sweeps for timers armed elsewhere."),
    ] = 60.0,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Timers per transaction.")] = 100,
    reload_check: ReloadCheck = RELOAD_CHECK,
    max_body: Annotated[
        int, typer.Option("--max-body", min=1024, help="Largest request body, in bytes.")
    ] = DEFAULT_MAX_BODY,
    retention: Annotated[
        float,
        typer.Option(
            "--idempotency-hours", min=0.01, help="How long Idempotency-Key replies are kept."
        ),
    ] = 24.0,
    example: Annotated[
        bool,
        typer.Option(
            "--example",
            help=f"On first start, seed a complaint and write an API key holding every role to "
            f"./{EXAMPLE_KEY}, so you can call the API at once.",
        ),
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            metavar="URL",
            help="Where clients reach the API (e.g. https://npm.example.org/api, behind a "
            "proxy): Location headers are built on it, and its host is trusted.",
        ),
    ] = None,
    trusted_host: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-host",
            metavar="HOST",
            help="A Host header to answer to (repeatable; *.example.org for subdomains, * for "
            "any) besides --host, localhost, 127.0.0.1 and ::1; any other is answered 400.",
        ),
    ] = None,
    auth_failure_limit: Annotated[
        int,
        typer.Option(
            "--auth-failure-limit",
            min=0,
            metavar="N",
            help="Failed authentications an address may make per minute before its requests "
            "are answered 429 (0: no limit).",
        ),
    ] = DEFAULT_AUTH_FAILURES,
    openapi: Annotated[
        Path | None,
        typer.Option(
            "--openapi", help="Write the OpenAPI document to FILE and exit.", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Run the HTTP API with the deadline scheduler and the notification dispatcher, logging
    JSON lines to standard error, until Ctrl-C or SIGTERM."""
    import uvicorn

    from opcatflow.adapters.http.app import create_app, openapi_document
    from opcatflow.adapters.http.idempotency import IdempotencyRecords

    if openapi is not None:
        openapi.write_text(json.dumps(openapi_document(), indent=2) + "\n", "utf-8")
        out.echo(f"wrote {openapi}")
        return
    opts = settings(ctx)
    level = opts.log_level
    source = ctx.find_root().get_parameter_source("log_level")
    if source is None or source.name == "DEFAULT":  # serve logs its requests unless told not to
        level = LogLevel.INFO
    opts = replace(opts, db=db or opts.db, log_format=LogFormat.JSON, log_level=level)
    config = api_config(
        host,
        public_url,
        trusted_host or [],
        max_body=max_body,
        idempotency_retention=timedelta(hours=retention),
        auth_failure_limit=auth_failure_limit,
    )
    stop = threading.Event()
    with opts.engine() as engine:
        log = engine.log
        if example:
            token = seed_example(engine, EXAMPLE_KEY)
            log.info("example_ready", key_file=str(EXAMPLE_KEY), new_key=token is not None)
        log.info(
            "serve_config",
            public_url=config.public_url,
            trusted_hosts=list(config.hosts()),
            auth_failure_limit=config.auth_failure_limit,
        )
        purge = IdempotencyRecords(engine.store, engine.clock, config.idempotency_retention)
        jobs = [PeriodicJob("idempotency-purge", purge.purge, PURGE_SECONDS)]
        worker = background(engine, sweep=sweep, batch=batch, jobs=jobs, reload=reload_check)
        # uvicorn restores these after its own shutdown and re-raises the signal it caught: it
        # then lands here, and the scheduler and the dispatcher stop cleanly below.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        reload_on_hangup(engine)
        worker.start()
        try:
            common: dict[str, Any] = {
                "host": host,
                "port": port,
                "log_config": log_config(level),
                "access_log": False,  # the app logs each request as a JSON line
                "server_header": False,
                "timeout_graceful_shutdown": 10,
            }
            if workers == 1:
                uvicorn.run(create_app(engine, config), **common)
            else:
                os.environ[ENV] = _settings_json(opts, config, reload_check)
                factory = "opcatflow.adapters.cli.serve:worker_app"
                uvicorn.run(factory, factory=True, workers=workers, **common)
        finally:
            worker.stop()
            log.info("serve_stopped")
