"""The ``opcatflow`` Typer application: global options, error handling, command registry."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from opcatflow.adapters.cli import (
    admin,
    apikey,
    backup,
    definitions,
    demo,
    instances,
    keys,
    listing,
    outbox,
    privacy,
    serve,
)
from opcatflow.adapters.cli import calendar as engagement
from opcatflow.adapters.cli import deadlines as deadline_commands
from opcatflow.adapters.cli import obligations as obligation_commands
from opcatflow.adapters.cli.catalogue import workflows_app
from opcatflow.adapters.cli.errors import UNEXPECTED, USAGE, describe, fail, one_line
from opcatflow.adapters.cli.imports import import_app
from opcatflow.adapters.cli.migrate import migrate
from opcatflow.adapters.cli.options import DEFAULT_DB, LogFormat, LogLevel, Settings
from opcatflow.adapters.cli.registers import registers_app
from opcatflow.adapters.cli.report import report_app
from opcatflow.engine.errors import InvalidText
from opcatflow.engine.inputs import check_text
from opcatflow.workflows import BUNDLED


class OpcatflowGroup(TyperGroup):
    """Turns every error into one line on standard error and a documented exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            raise  # Typer reports these itself (usage errors: see main below)
        except Exception as err:
            if isinstance(ctx.obj, Settings) and ctx.obj.debug:
                raise
            message, code = describe(err)
            raise fail(message, code) from None

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        _refuse_invalid_text(sys.argv[1:] if args is None else args)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as err:  # click's usage errors: one line, exit 2
            usage_ctx = getattr(err, "ctx", None)
            hint = f" (see '{usage_ctx.command_path} --help')" if usage_ctx is not None else ""
            typer.echo(f"error: {one_line(err.format_message())}{hint}", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(UNEXPECTED)
        sys.exit(result if isinstance(result, int) else 0)


def _refuse_invalid_text(args: Sequence[str]) -> None:
    """Exit 2 on an argument that is not valid Unicode: bytes that were not UTF-8 reach
    Python as lone surrogates, which nothing downstream can store or print."""
    for number, arg in enumerate(args, start=1):
        try:
            check_text(f"argument {number}", arg)
        except InvalidText as err:
            typer.echo(f"error: {err}", err=True)
            sys.exit(USAGE)


app = typer.Typer(
    name="opcatflow",
    cls=OpcatflowGroup,
    help="Workflow engine for National Preventive Mechanisms under OPCAT.\n\n"
    "New here? Run `opcatflow demo`.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"opcatflow {package_version('opcatflow')}")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            typer.echo("opcatflow (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    *,
    db: Annotated[
        str,
        typer.Option(
            "--db",
            envvar="OPCATFLOW_DB",
            help="Database: a SQLite file path or a postgresql:// URL.",
            metavar="PATH|URL",
        ),
    ] = DEFAULT_DB,
    workflows: Annotated[
        list[Path] | None,
        typer.Option(
            "--workflows",
            metavar="PATH",
            help="Folder or file of workflow definitions (repeatable), added to the bundled "
            "workflows: a folder may add new versions of them, or new workflows.",
        ),
    ] = None,
    no_bundled: Annotated[
        bool,
        typer.Option(
            "--no-bundled",
            help="Leave the bundled workflows out: only those of --workflows are loaded.",
        ),
    ] = False,
    npm_settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            envvar="OPCATFLOW_SETTINGS",
            metavar="FILE",
            help="The NPM's settings (calendar, deadline durations), read over the shipped "
            "defaults (opcatflow/config/opcatflow.yaml).",
        ),
    ] = None,
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            envvar="OPCATFLOW_KEYS",
            metavar="SPEC",
            help="Where the key-encryption keys are: file:PATH, env[:VARIABLE] or "
            "module:factory (a KMS or HSM). [default: $OPCATFLOW_KEK if set, else the key "
            "file $OPCATFLOW_KEY_FILE or ~/.config/opcatflow/keys, made on first use]",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", help="How log events are written to standard error."),
    ] = LogFormat.PRETTY,
    log_level: Annotated[
        LogLevel,
        typer.Option("--log-level", envvar="OPCATFLOW_LOG_LEVEL", help="Least level logged."),
    ] = LogLevel.WARNING,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Workflow engine for National Preventive Mechanisms under OPCAT.

    New here? Run `opcatflow demo`.
    """
    if no_bundled and not workflows:
        raise fail("--no-bundled leaves no workflows: give --workflows PATH", USAGE)
    bundled = () if no_bundled else (BUNDLED,)
    ctx.obj = Settings(
        db=db,
        workflows=(*bundled, *(workflows or ())),
        npm_settings=npm_settings,
        keys=keys,
        debug=debug,
        log_format=log_format,
        log_level=log_level,
    )
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


for name, command in (
    ("validate", definitions.validate),
    ("schema", definitions.schema),
    ("diagram", definitions.diagram),
    ("start", instances.start),
    ("fire", instances.fire),
    ("show", instances.show),
    ("history", instances.history),
    ("triggers", instances.triggers),
    ("list", listing.list_),
    ("demo", demo.demo),
    ("serve", serve.serve),
    ("migrate", migrate),
):
    app.command(name)(command)
app.add_typer(report_app, name="report")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.db_app, name="db")
admin.db_app.command("encrypt")(keys.encrypt)
app.add_typer(keys.keys_app, name="keys")
deadline_commands.register(app)
obligation_commands.register(app)
privacy.register(app)
app.command("calendar")(engagement.calendar)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(outbox.outbox_app, name="outbox")
app.add_typer(outbox.notify_app, name="notify")
app.add_typer(apikey.apikey_app, name="apikey")
app.add_typer(workflows_app, name="workflows")
app.add_typer(import_app, name="import")
app.add_typer(registers_app, name="registers")


def main() -> None:
    """Console-script entry point."""
    app()
