"""Commands on one instance: ``start``, ``fire``, ``show``, ``history``, ``triggers``.

Every command that takes an instance id also takes a unique prefix of it (8 characters or
more), resolved by the store from the id's index (``Engine.resolve_id``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import USAGE, fail
from opcatflow.adapters.cli.options import (
    OPERATOR,
    Actor,
    Data,
    Json,
    LogFormat,
    Reader,
    ReadReason,
    Reason,
    Role,
    SetFields,
    parse_data,
    reader,
    settings,
)
from opcatflow.adapters.views import instance_view, ref_ids, withheld_record
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.readlog import HISTORY_FIELDS, record_reads, visible_personal
from opcatflow.engine.rows import OPEN_OBLIGATION, ObligationStatus
from opcatflow.engine.summary import summary_of

InstanceId = Annotated[
    str,
    typer.Argument(
        help="The instance id as printed by start or list, or its first 8 or more characters.",
        metavar="ID",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the instance id.")]
AsRole = Annotated[
    str | None,
    typer.Option(
        "--role",
        help="Show only what this role may read: the fields it may not read are withheld "
        "(default: everything; the CLI is an operator's tool).",
        metavar="ROLE",
    ),
]


def start(
    ctx: typer.Context,
    *,
    workflow: Annotated[
        str, typer.Argument(help="Workflow id, e.g. complaint.", metavar="WORKFLOW")
    ],
    actor: Actor,
    role: Role,
    data: Data = None,
    assignments: SetFields = None,
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent", help="Id (or 8+ character prefix) of the instance this one belongs to."
        ),
    ] = None,
    reason: Reason = None,
    quiet: Quiet = False,
    as_json: Json = False,
    entry_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="For a register entry (place, authority, theme, person): the id it is known "
            "by, e.g. ombudsperson (default: a new uuid).",
            metavar="ID",
        ),
    ] = None,
) -> None:
    """Start an instance of a workflow (or add an entry to a register)."""
    fields = parse_data(data, assignments)
    opts = settings(ctx)
    with opts.engine() as engine:
        if parent is not None:
            parent = engine.resolve_id(parent)
        started = engine.start_result(
            workflow, actor=actor, role=role, data=fields, parent_id=parent, reason=reason,
            instance_id=entry_id,
        )  # fmt: skip
        instance = started.instance
        wf = engine.workflow(instance.workflow_id, instance.workflow_version)
    out.notices(started.notices, as_json=opts.log_format is LogFormat.JSON)
    if as_json:
        out.print_json(instance.as_json())
    elif quiet:
        out.echo(instance.id)
    else:
        out.echo(f"started {instance.workflow_id} {out.bold(instance.id)}")
        out.echo(f"  state  {out.state_text(wf, instance.state)}")
        out.echo(out.dim(f"  next:  opcatflow triggers {instance.id} --role ROLE"))


def fire(
    ctx: typer.Context,
    *,
    instance_id: InstanceId,
    trigger: Annotated[
        str, typer.Argument(help="The trigger to fire, e.g. acknowledge.", metavar="TRIGGER")
    ],
    actor: Actor,
    role: Role,
    data: Data = None,
    assignments: SetFields = None,
    reason: Reason = None,
    expect_version: Annotated[
        int | None,
        typer.Option(
            "--expect-version",
            help="Refuse (exit 4) if the instance is no longer at this version.",
            metavar="N",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Fire a trigger on an instance: one transaction, audited whether applied or refused."""
    fields = parse_data(data, assignments)
    opts = settings(ctx)
    with opts.engine(existing=True) as engine:
        instance_id = engine.resolve_id(instance_id)
        before = engine.get(instance_id).state
        result = engine.fire_result(
            instance_id,
            trigger,
            actor=actor,
            role=role,
            data=fields,
            reason=reason,
            expected_version=expect_version,
        )
        assert result.instance is not None
        instance = result.instance
    out.notices(result.notices, as_json=opts.log_format is LogFormat.JSON)
    if as_json:
        out.print_json(instance.as_json())
    else:
        out.echo(out.applied_line(before, instance, trigger))


def show(
    ctx: typer.Context,
    instance_id: InstanceId,
    *,
    role: AsRole = None,
    as_json: Json = False,
    actor: Reader = None,
    reason: ReadReason = None,
) -> None:
    """Show an instance: state, version, times, data, and its open deadlines (last days in
    the NPM's time zone). A read of personal values is logged: see `access-log`."""
    with settings(ctx).engine(existing=True) as engine:
        instance_id = engine.resolve_id(instance_id)
        instance = engine.get(instance_id)
        wf = engine.workflow(instance.workflow_id, instance.workflow_version)
        children = engine.children(instance_id)
        owed = [o for o in engine.obligations(instance_id) if o.status in OPEN_OBLIGATION]
        calendar = engine.settings.calendar
        zone = calendar.timezone
        if role is not None:
            _known_role(wf, role)
        hidden = wf.withheld_fields([role]) if role is not None else frozenset()
        record_reads(
            engine, actor=reader(actor), role=role or OPERATOR, channel="cli", what="show",
            reads=[(instance_id, visible_personal(wf, hidden))], reason=reason,
        )  # fmt: skip
        # references shown as {id, title}: the title read from the register
        entries = engine.registers.titles(ref_ids(instance, wf))
    view = instance_view(instance, wf, hidden, entries)
    instance = replace(instance, data=view["data"])
    if as_json:
        body = instance.as_json()
        if role is not None:
            body["withheld"] = view["withheld"]
        if wf.definition.summary_field is not None:
            body["summary"] = summary_of(wf, instance.data)  # type: ignore[typeddict-unknown-key]
        out.print_json(
            {
                **body,
                "children": [c.id for c in children],
                "deadlines": [o.as_json() for o in owed],
                "timezone": zone,
            }
        )
        return
    lines = out.instance_lines(instance, wf)
    if owed:
        lines.append(f"  deadlines  {out.dim(f'last days in {zone}')}")
        lines.extend(
            f"    {o.last_day or calendar.last_day(o.due_at)}  {o.deadline}"
            + (f" #{o.occurrence}" if o.occurrence > 1 else "")
            + f"  {'OVERDUE' if o.status is ObligationStatus.DUE else o.status}"
            for o in owed
        )
    if children:
        lines.append("  children")
        lines.extend(f"    {c.id}  {c.workflow_id}  {c.state}" for c in children)
    out.echo("\n".join(lines))


def history(
    ctx: typer.Context,
    instance_id: InstanceId,
    *,
    role: AsRole = None,
    as_json: Json = False,
    actor: Reader = None,
    reason: ReadReason = None,
) -> None:
    """Show the audit trail of an instance as a timeline (times in UTC); its reasons are
    opened, so the read is logged (see `access-log`)."""
    with settings(ctx).engine(existing=True) as engine:
        instance_id = engine.resolve_id(instance_id)
        records = engine.history(instance_id)
        instance = engine.get(instance_id)
        wf = engine.workflow(instance.workflow_id, instance.workflow_version)
        hidden: frozenset[str] = frozenset()
        if role is not None:
            _known_role(wf, role)
            hidden = wf.withheld_fields([role])
            records = [withheld_record(r, hidden) for r in records]
        shown = visible_personal(wf, hidden)
        record_reads(
            engine, actor=reader(actor), role=role or OPERATOR, channel="cli", what="history",
            reads=[(instance_id, (*shown, *HISTORY_FIELDS) if shown or role is None else ())],
            reason=reason,
        )  # fmt: skip
    if as_json:
        out.print_json([r.as_json() for r in records])
        return
    applied = sum(r.outcome != "refused" for r in records)
    out.echo(
        out.dim(
            f"{instance_id}: {len(records)} audit records "
            f"({applied} applied, {len(records) - applied} refused); times in UTC"
        )
    )
    out.echo("\n".join(out.timeline(records)))


def _known_role(wf: CompiledWorkflow, role: str) -> None:
    if role not in wf.roles:
        known = ", ".join(sorted(wf.roles))
        raise fail(f"workflow {wf.id!r} has no role {role!r} (roles: {known})", USAGE)


def triggers(
    ctx: typer.Context, instance_id: InstanceId, role: Role, as_json: Json = False
) -> None:
    """List the triggers a role may fire now, and whether their guards would let them pass."""
    with settings(ctx).engine(existing=True) as engine:
        options = engine.available_triggers(engine.resolve_id(instance_id), role)
    if as_json:
        out.print_json([o.as_json() for o in options])
    else:
        out.echo("\n".join(out.triggers_lines(options, role)))
