"""``list``: instances a page at a time, with filters that must name something that exists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.paging import BadCursor, decode_cursor, encode_cursor, more_text
from opcatflow.engine import Engine
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.filters import check_state, check_workflow, typed_where
from opcatflow.engine.runtime import list_key
from opcatflow.engine.summary import summary_of


def list_(
    ctx: typer.Context,
    *,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only in this state.")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="Only where a data field has this value (repeatable), e.g. urgency=urgent; "
            "the value is read as the field's type.",
            metavar="FIELD=VALUE",
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            help="The next page: the cursor the previous page printed.",
            metavar="CURSOR",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="At most this many.")
    ] = 100,
    as_json: Json = False,
) -> None:
    """List instances, oldest first, a page at a time (says how many more there are).

    A state, field or enum value that no workflow has is an error (exit 2), not an empty list.
    """
    conditions = _conditions(where or ())
    key = None
    if after is not None:
        try:
            key = decode_cursor(after)
        except BadCursor as err:
            raise typer.BadParameter(str(err), param_hint="--after") from None
    with settings(ctx).engine(existing=True) as engine:
        scope = _scope(engine, workflow)
        if state is not None:
            check_state(state, scope)
        filters = typed_where(conditions, scope)
        found = engine.query(workflow=workflow, state=state, where=filters, after=key, limit=limit)
        more = 0
        if len(found) == limit:
            more = engine.count(workflow=workflow, state=state, where=filters, after=found[-1])
        workflows = [engine.workflow(i.workflow_id, i.workflow_version) for i in found]
        summaries = [summary_of(wf, i.data) for wf, i in zip(workflows, found, strict=True)]
    cursor = encode_cursor(list_key(found[-1])) if more else None
    if as_json:
        items: list[dict[str, Any]] = [dict(i.as_json()) for i in found]
        for item, wf, summary in zip(items, workflows, summaries, strict=True):
            if wf.definition.summary_field is not None:  # the key only where it can be set
                item["summary"] = summary
        out.print_json({"items": items, "more": more, "next_cursor": cursor})
        return
    if not found:
        out.echo("no instances")
        return
    out.echo("\n".join(out.instances_table(found, summaries)))
    if cursor is not None:
        out.echo(out.dim(f"{more_text(more)}: repeat with --after {cursor}"))


def _scope(engine: Engine, workflow: str | None) -> Sequence[CompiledWorkflow]:
    """The workflows the filters are checked against: the one named, else every loaded
    version of every workflow."""
    if workflow is None:
        return list(engine.catalog)
    check_workflow(workflow, (wf.id for wf in engine.catalog))
    return [wf for wf in engine.catalog if wf.id == workflow]


def _conditions(items: Sequence[str]) -> dict[str, str]:
    conditions: dict[str, str] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint="--where")
        conditions[name.strip()] = raw
    return conditions
