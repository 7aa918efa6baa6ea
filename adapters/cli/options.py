"""Global settings, the options commands share, and the engine and logger the CLI builds.

The library never configures logging; the CLI builds one structlog logger that writes to
standard error and hands it to the engine, so standard output carries only results.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import structlog
import typer
from structlog.typing import FilteringBoundLogger, Processor

from opcatflow.adapters.cli.database import missing_tables, require_existing, require_folder
from opcatflow.adapters.cli.files import read_data_source
from opcatflow.adapters.notifier import engine_hooks, template_problems
from opcatflow.engine import (
    Catalog,
    Clock,
    Engine,
    SchemaMismatch,
    SQLAlchemyStore,
    SystemClock,
    load_catalog,
)
from opcatflow.engine.crypto.providers import KeyProvider, load_provider
from opcatflow.engine.limits import JSON_DEPTH
from opcatflow.engine.settings import Settings as DeadlineSettings
from opcatflow.notifications.people import PersonRegister
from opcatflow.workflows import BUNDLED, registry

DEFAULT_DB = "opcatflow.db"


class LogFormat(StrEnum):
    PRETTY = "pretty"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Settings:
    """What the global options say, kept on the root context for every command."""

    db: str = DEFAULT_DB
    workflows: tuple[Path, ...] = (BUNDLED,)
    debug: bool = False
    log_format: LogFormat = LogFormat.PRETTY
    log_level: LogLevel = LogLevel.WARNING
    npm_settings: Path | None = None
    keys: str | None = None

    def key_provider(self) -> KeyProvider:
        """The key-encryption keys ``--keys`` names (see :func:`load_provider`).

        Raises:
            typer.BadParameter: a spec naming nothing loadable.
        """
        try:
            return load_provider(self.keys)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--keys") from None

    def logger(self) -> FilteringBoundLogger:
        return make_logger(self.log_format, self.log_level)

    def deadline_settings(self) -> DeadlineSettings:
        """The NPM's calendar and deadline durations (``--settings``) over the defaults.

        Raises:
            SettingsError
        """
        if self.npm_settings is None:
            return DeadlineSettings.default()
        return DeadlineSettings.load(self.npm_settings)

    def catalog(self) -> Catalog:
        """The workflows under ``--workflows``. Raises DefinitionError."""
        return load_catalog(self.workflows, registry)

    @contextmanager
    def engine(self, clock: Clock | None = None, *, existing: bool = False) -> Iterator[Engine]:
        """The engine every command (and the demo) works through.

        Definitions are stored when their first instance starts (``register=False``), so a
        read command still works after a definition file changed without a new version.

        Args:
            existing: refuse (exit 5, naming it) a database that does not exist yet, instead
                of creating it: for commands that only read.
        """
        deadline_settings = self.deadline_settings()
        catalog = self.catalog()
        log = self.logger()
        clock = clock or SystemClock()
        calendar = deadline_settings.calendar
        with self.store(existing=existing, logger=log) as store:
            # the notification outbox; its people from the person register on the NPM's day
            register = PersonRegister(store, lambda: calendar.local_date(clock.now()))
            hooks = engine_hooks(
                self.workflows, registry, logger=log, policy=deadline_settings.policy,
                register=register,
            )  # fmt: skip
            engine = Engine(
                store,
                catalog,
                registry,
                clock=clock,
                logger=log,
                hooks=hooks,
                settings=deadline_settings,
                register=False,
                sources=self.workflows,
                checks=[template_problems],  # a reload checks the templates new versions name
                keys=self.key_provider(),
            )
            yield engine

    @contextmanager
    def store(
        self, *, existing: bool = False, logger: FilteringBoundLogger | None = None
    ) -> Iterator[SQLAlchemyStore]:
        """The database of ``--db``, at the current schema.

        Args:
            existing: refuse (exit 5, naming it) a database that does not exist yet, instead
                of creating it.
            logger: where its group commit logs (debug); the CLI's own logger by default.
        """
        (require_existing if existing else require_folder)(self.db)
        store = SQLAlchemyStore(self.db, logger=logger or self.logger())
        try:
            try:
                store.ensure_schema(create=not existing)
            except SchemaMismatch as err:
                if existing and err.found is None:
                    raise missing_tables(self.db) from None
                raise
            yield store
        finally:
            store.close()


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def make_logger(fmt: LogFormat, level: LogLevel) -> FilteringBoundLogger:
    """A structlog logger writing one event per line to standard error."""
    renderer: Processor
    if fmt is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    logger = structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.value.upper()]
        ),
    )
    # bound now: wrap_logger's lazy proxy builds a new logger on every call (1.5 us, even for
    # an event below the level); everything it would read is given here
    return cast(FilteringBoundLogger, logger.bind())


# -- options shared by commands ------------------------------------------------------------

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Actor = Annotated[
    str,
    typer.Option(
        "--actor",
        envvar="OPCATFLOW_ACTOR",
        help="Who acts (kept in the audit trail).",
        metavar="NAME",
    ),
]
Role = Annotated[
    str,
    typer.Option(
        "--role",
        envvar="OPCATFLOW_ROLE",
        help="The role the actor acts in.",
        metavar="ROLE",
    ),
]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Fields as a JSON object, or @file.json (@- reads standard input).",
        metavar="JSON|@FILE",
    ),
]
SetFields = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="One field, FIELD=VALUE (repeatable; applied after --data). VALUE is read as "
        'JSON when it parses (true, 3, ["a"], null), else as text.',
        metavar="FIELD=VALUE",
    ),
]
Reason = Annotated[
    str | None,
    typer.Option("--reason", help="Why, in your words (kept in the audit trail).", metavar="TEXT"),
]


def parse_data(data: str | None, assignments: Sequence[str] | None = None) -> dict[str, Any]:
    """The fields of ``--data`` and ``--set``.

    Raises:
        typer.BadParameter: not JSON, not an object, an unreadable file, or no ``=``.
    """
    fields: dict[str, Any] = {}
    if data is not None:
        text = data
        if data.startswith("@"):
            text = read_data_source(data[1:])
        parsed, problem = _json(text, "--data")
        if problem is not None:
            raise typer.BadParameter(f"not valid JSON ({problem})", param_hint="--data")
        if not isinstance(parsed, dict):
            raise typer.BadParameter(
                'expected a JSON object, e.g. {"field": "value"}', param_hint="--data"
            )
        fields.update(parsed)
    fields.update(parse_assignments(assignments or (), "--set"))
    return fields


def _json(text: str, option: str) -> tuple[Any, str | None]:
    """``text`` parsed as JSON, or why it is not JSON.

    Raises:
        typer.BadParameter: JSON nested past the limit (the parser would recurse once per
            level), or an integer too long to convert.
    """
    try:
        return json.loads(text), None
    except RecursionError:
        raise typer.BadParameter(
            f"nested too deep: over the {JSON_DEPTH.describe()}", param_hint=option
        ) from None
    except json.JSONDecodeError as err:
        return None, str(err)
    except ValueError as err:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise typer.BadParameter(f"not usable JSON ({err})", param_hint=option) from None


def parse_assignments(items: Sequence[str], option: str) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs; a VALUE that parses as JSON is taken as JSON, else as text."""
    result: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint=option)
        value, problem = _json(raw, option)
        result[name.strip()] = raw if problem is not None else value
    return result


Reader = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="OPCATFLOW_ACTOR",
        help="Who reads (kept in the read log) [default: the system user].",
        metavar="NAME",
    ),
]
ReadReason = Annotated[
    str | None,
    typer.Option("--reason", help="Why you read it (kept in the read log).", metavar="TEXT"),
]
OPERATOR = "operator"  # the role of a command-line reader who names none


def reader(actor: str | None) -> str:
    """The actor a read is logged under: the one given, else the system user (``uid:N``
    when the system has no name for it, as in some containers)."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
