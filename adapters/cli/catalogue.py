"""``opcatflow workflows``: export the bundled definitions, deploy new versions to the
database (the catalogue every process on it loads), retire a version, list them all."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import NOT_FOUND, USAGE, fail
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.notifier import template_problems
from opcatflow.engine.catalogue import assemble, stored_conflicts
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import settings_problems
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.loader import Catalog, compile_text, definition_files, load_catalog
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import DefinitionOrigin, DefinitionStatus, StoredDefinition
from opcatflow.workflows import BUNDLED, registry

workflows_app = typer.Typer(
    help="Export, deploy, retire and list workflow definition versions.", no_args_is_help=True
)


@workflows_app.command("export")
def export(
    folder: Annotated[Path, typer.Argument(help="Where to write them (created if missing).")],
) -> None:
    """Write the bundled workflow definitions (YAML) into FOLDER, to edit and deploy.

    Refuses to overwrite a file that differs from the bundled one.
    """
    if folder.exists() and not folder.is_dir():
        raise fail(f"{folder} is not a folder", USAGE)
    sources = sorted(definition_files([BUNDLED]))
    clashes = [
        folder / s.name
        for s in sources
        if (folder / s.name).exists() and (folder / s.name).read_bytes() != s.read_bytes()
    ]
    if clashes:
        names = ", ".join(str(c) for c in clashes)
        raise fail(f"{names} exist with other content: export into another folder", USAGE)
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copyfile(source, folder / source.name)
    out.echo(f"wrote {len(sources)} definitions to {folder}")


@workflows_app.command("deploy")
def deploy(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="Definition files, or folders of them.", exists=True)
    ],
    as_json: Json = False,
) -> None:
    """Validate definitions as the services load them and store their versions in the
    database: every `serve` and `worker` on it loads them on SIGHUP, POST /admin/reload or
    its periodic check. A changed definition must carry a new version."""
    opts = settings(ctx)
    paths = list(definition_files(files))
    with opts.store() as store:
        with store.read() as uow:
            rows = uow.definitions.listing()
        loaded = load_catalog([*opts.workflows, *paths], registry)
        conflicts = stored_conflicts(loaded, rows, registry)  # a version to bump
        if conflicts:
            raise DefinitionError(conflicts)
        catalog = assemble(loaded, rows, registry)
        problems = [
            *template_problems(catalog),
            *settings_problems(catalog, opts.deadline_settings()),
        ]
        if problems:
            raise DefinitionError(problems)
        chosen = [compile_text(p.read_text("utf-8"), str(p), registry) for p in paths]
        now = datetime.now(UTC)
        with store.write() as uow:
            done = [(wf, _deploy(uow, wf, now)) for wf in chosen]
    if as_json:
        out.print_json([{"id": wf.id, "version": wf.version, "done": what} for wf, what in done])
        return
    for wf, what in done:
        out.echo(f"{wf.id} v{wf.version}: {what}")


def _deploy(uow: UnitOfWork, wf: CompiledWorkflow, now: datetime) -> str:
    stored = uow.definitions.get(wf.id, wf.version)
    if stored is None:
        uow.definitions.add(
            StoredDefinition(
                wf.id,
                wf.version,
                wf.fingerprint,
                wf.definition.title,
                wf.source,
                now,
                origin=DefinitionOrigin.DEPLOY,
            )
        )
        return "deployed"
    if stored.origin is not DefinitionOrigin.DEPLOY:
        uow.definitions.set_origin(wf.id, wf.version, DefinitionOrigin.DEPLOY)
        return "deployed (it was stored already)"
    return "already deployed"


@workflows_app.command("retire")
def retire(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    version: Annotated[int, typer.Argument(help="The version to retire.", min=1)],
) -> None:
    """Stop new starts on one version, on every route and every process on the database;
    its running instances continue. New starts go to the latest version not retired."""
    _set_status(ctx, workflow, version, DefinitionStatus.RETIRED)


@workflows_app.command("activate")
def activate(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    version: Annotated[int, typer.Argument(help="The retired version to start on again.", min=1)],
) -> None:
    """Undo `workflows retire`: the version starts instances again."""
    _set_status(ctx, workflow, version, DefinitionStatus.ACTIVE)


def _set_status(ctx: typer.Context, workflow: str, version: int, status: DefinitionStatus) -> None:
    opts = settings(ctx)
    with opts.engine(existing=True) as engine:
        wf = engine.catalog.find(workflow, version)
        now = engine.clock.now()
        with engine.store.write() as uow:
            stored = uow.definitions.get(workflow, version)
            if stored is None and wf is None:
                message = f"no workflow {workflow} v{version} in the files or the database"
                raise fail(message, NOT_FOUND)
            if stored is None:
                assert wf is not None
                uow.definitions.add(
                    StoredDefinition(
                        wf.id, wf.version, wf.fingerprint, wf.definition.title, wf.source, now
                    )
                )
            uow.definitions.set_status(workflow, version, status, now)
            running = _running(engine.catalog, uow, workflow, version)
    if status is DefinitionStatus.RETIRED:
        out.echo(
            f"{workflow} v{version} retired: new starts are refused; "
            f"{running} running instance(s) continue"
        )
    else:
        out.echo(f"{workflow} v{version} active: it starts instances again")


def _running(catalog: Catalog, uow: UnitOfWork, workflow: str, version: int) -> int:
    wf = catalog.find(workflow, version)
    finals = wf.finals if wf is not None else frozenset()
    census = uow.instances.census()
    return sum(
        n
        for (w, v, state), n in census.items()
        if (w, v) == (workflow, version) and state not in finals
    )


@dataclass(frozen=True)
class Line:
    workflow: str
    version: int
    title: str
    status: str
    source: str
    starts: bool
    running: int
    finished: int

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@workflows_app.command("list")
def list_versions(ctx: typer.Context, as_json: Json = False) -> None:
    """Every version known (files, deployed, stored for running instances): its status,
    where it comes from, whether new starts use it, and its instances."""
    opts = settings(ctx)
    with opts.engine(existing=True) as engine, engine.store.read() as uow:
        rows = {(r.workflow_id, r.version): r for r in uow.definitions.listing()}
        census = uow.instances.census()
        lines = _lines(engine.catalog, rows, census)
    if as_json:
        out.print_json([line.as_json() for line in lines])
        return
    headers = ["workflow", "version", "status", "source", "new starts", "running", "finished"]
    table = [
        [
            line.workflow,
            str(line.version),
            line.status,
            line.source,
            "yes" if line.starts else "",
            str(line.running),
            str(line.finished),
        ]
        for line in lines
    ]
    for text in out.table(headers, table):
        out.echo(text)


def _lines(
    catalog: Catalog,
    rows: dict[tuple[str, int], StoredDefinition],
    census: dict[tuple[str, int, str], int],
) -> Sequence[Line]:
    keys = sorted({*rows, *((wf.id, wf.version) for wf in catalog)})
    lines = []
    for workflow, version in keys:
        wf = catalog.find(workflow, version)
        row = rows.get((workflow, version))
        finals = wf.finals if wf is not None else frozenset()
        counts = [(s, n) for (w, v, s), n in census.items() if (w, v) == (workflow, version)]
        if row is not None and row.origin is DefinitionOrigin.DEPLOY:
            source = "deployed"
        elif wf is not None:
            source = "files"
        else:
            source = "stored"  # only the copy its instances run on
        lines.append(
            Line(
                workflow=workflow,
                version=version,
                title=(wf.definition.title if wf is not None else row.title if row else ""),
                status=str(row.status) if row is not None else "active",
                source=source,
                starts=wf is not None
                and catalog.get(workflow) is wf
                and not catalog.is_retired(workflow, version),
                running=sum(n for s, n in counts if s not in finals),
                finished=sum(n for s, n in counts if s in finals),
            )
        )
    return lines
