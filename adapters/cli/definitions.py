"""Commands about definitions: ``validate``, ``schema``, ``diagram``. Only ``validate --db``
reads a database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.database import sqlite_path
from opcatflow.adapters.cli.errors import INVALID_DEFINITION, USAGE, fail
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.notifier import template_problems
from opcatflow.engine import (
    CompiledWorkflow,
    DefinitionError,
    Problem,
    SchemaMismatch,
    SQLAlchemyStore,
    WorkflowDefinition,
    compile_text,
    load_catalog,
)
from opcatflow.engine.catalogue import assemble, stored_conflicts
from opcatflow.engine.contract_checks import no_writes_hint
from opcatflow.engine.deadlines import settings_problems
from opcatflow.engine.diagram import doc_pages, dot, mermaid
from opcatflow.engine.loader import definition_files
from opcatflow.engine.rows import StoredDefinition
from opcatflow.engine.summary import label_warnings
from opcatflow.engine.yamlsource import load_yaml
from opcatflow.workflows import registry


def _summary(wf: CompiledWorkflow) -> dict[str, object]:
    d = wf.definition
    return {
        "id": wf.id,
        "version": wf.version,
        "title": d.title,
        "states": len(d.states),
        "transitions": len(d.transitions),
        "roles": sorted(d.roles),
        "initial": wf.initial,
        "finals": sorted(wf.finals),
        "fingerprint": wf.fingerprint,
    }


def _hints(files: Sequence[Path]) -> list[Problem]:
    """Hints that are not problems: a file written before write sets existed."""
    hints = []
    for f in files:
        try:
            doc = load_yaml(f.read_text("utf-8"), str(f))
        except (OSError, UnicodeError, DefinitionError):
            continue  # load_catalog reports it as a problem
        hint = no_writes_hint(doc)
        if hint is not None:
            hints.append(hint)
    return hints


def _stored(ctx: typer.Context, db: str | None) -> list[StoredDefinition]:
    """The definitions stored in the database that ``validate`` compares with: ``--db`` of
    the command (which must exist), or the global one when it was given (not its default)
    and the database exists."""
    if db is not None:
        with replace(settings(ctx), db=db).store(existing=True) as store, store.read() as uow:
            return uow.definitions.listing()
    source = ctx.find_root().get_parameter_source("db")
    if source is None or source.name == "DEFAULT":
        return []
    # The global --db (or $OPCATFLOW_DB): compared with when it holds opcatflow's schema.
    path = sqlite_path(settings(ctx).db)
    if path is not None and not path.is_file():
        return []
    store = SQLAlchemyStore(settings(ctx).db)
    try:
        store.ensure_schema(create=False)
        with store.read() as uow:
            return uow.definitions.listing()
    except SchemaMismatch as err:
        if err.found is None:
            return []  # no schema yet: nothing stored
        raise
    finally:
        store.close()


def validate(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Definition files, or folders of .yaml files.", exists=True),
    ],
    as_json: Json = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Also compare with the definitions this database stores: a changed "
            "definition that reuses a stored version is refused (bump it). The versions "
            "deployed there are loaded, as a running service would.",
            metavar="PATH|URL",
        ),
    ] = None,
) -> None:
    """Check workflow definitions as the runtime loads them (with the bundled workflows and
    --workflows); list every problem of every file as path:line:col: message."""
    opts = settings(ctx)
    files = list(definition_files(paths))
    problems: list[Problem] = [
        Problem(str(p), 1, 1, "no .yaml or .yml definitions in this folder")
        for p in paths
        if p.is_dir() and not any(f.parent == p for f in files)
    ]
    valid: list[tuple[Path, CompiledWorkflow]] = []
    stored = _stored(ctx, db)
    try:
        # Resolved as the runtime resolves them: the files with the bundled workflows,
        # --workflows and the versions deployed to the database, as one catalog (so one id
        # and version defined twice differently is a problem naming both files).
        loaded = load_catalog([*opts.workflows, *files], registry)
        conflicts = stored_conflicts(loaded, stored, registry)  # a version to bump
        if conflicts:
            raise DefinitionError(conflicts)
        catalog = assemble(loaded, stored, registry)
    except DefinitionError as err:
        problems.extend(err.problems)
    else:
        problems.extend(template_problems(catalog))  # notifications' templates and variables
        problems.extend(settings_problems(catalog, opts.deadline_settings()))
    if not problems:
        valid = [(f, compile_text(f.read_text("utf-8"), str(f), registry)) for f in files]
    hints = _hints(files)
    # warnings: valid, but a list or a calendar will read badly (exit 0)
    warnings = [w for f, wf in valid if wf.doc for w in label_warnings(wf.doc, wf.definition)]
    if as_json:
        out.print_json(
            {
                "ok": not problems,
                "workflows": [{**_summary(wf), "path": str(f)} for f, wf in valid],
                "problems": [
                    {"path": p.path, "line": p.line, "column": p.column, "message": p.message}
                    for p in problems
                ],
                "hints": [
                    {"path": p.path, "line": p.line, "column": p.column, "message": p.message}
                    for p in hints
                ],
                "warnings": [
                    {"path": p.path, "line": p.line, "column": p.column, "message": p.message}
                    for p in warnings
                ],
            }
        )
    else:
        for p in [*problems, *hints, *warnings]:
            out.echo(str(p))
        for f, wf in valid:
            s = _summary(wf)
            out.echo(
                f"{out.green('ok')}  {wf.id} v{wf.version}  {wf.definition.title}  "
                + out.dim(
                    f"({s['states']} states, {s['transitions']} transitions, "
                    f"{len(wf.definition.roles)} roles; {f})"
                )
            )
    if problems:
        where = {p.path for p in problems}
        noun = "problem" if len(problems) == 1 else "problems"
        raise fail(f"{len(problems)} {noun} in {len(where)} file(s)", INVALID_DEFINITION)


def schema() -> None:
    """Print the JSON Schema of the definition format (for editors: completion and checks)."""
    out.print_json(WorkflowDefinition.model_json_schema())


class DiagramFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


def diagram(
    ctx: typer.Context,
    *,
    workflow: Annotated[
        str | None,
        typer.Argument(help="A workflow id (from --workflows) or a definition file."),
    ] = None,
    fmt: Annotated[
        DiagramFormat, typer.Option("--format", "-f", help="Mermaid or Graphviz DOT.")
    ] = DiagramFormat.MERMAID,
    version: Annotated[int | None, typer.Option("--version", help="Default: latest.")] = None,
    write_docs: Annotated[
        Path | None,
        typer.Option(
            "--write-docs",
            help="Instead, write one Markdown page per workflow (diagram and tables) into "
            "this folder, e.g. docs/diagrams.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Draw a workflow as a state diagram (Mermaid stateDiagram-v2 or Graphviz DOT)."""
    if write_docs is not None:
        pages = doc_pages(settings(ctx).catalog().latest())
        write_docs.mkdir(parents=True, exist_ok=True)
        for name, text in pages.items():
            (write_docs / name).write_text(text, encoding="utf-8")
            out.echo(f"wrote {write_docs / name}")
        return
    if workflow is None:
        raise fail("give a WORKFLOW (an id or a file), or --write-docs FOLDER", USAGE)
    path = Path(workflow)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        # one file alone: the workflows it opens are not needed to draw it
        wf = compile_text(path.read_text("utf-8"), str(path), registry)
    else:
        wf = settings(ctx).catalog().get(workflow, version)
    out.echo((mermaid(wf) if fmt is DiagramFormat.MERMAID else dot(wf)).rstrip("\n"))
