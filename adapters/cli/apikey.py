"""``apikey create | list | revoke``: the keys other systems call the HTTP API with."""

from __future__ import annotations

from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import NOT_FOUND, USAGE, fail
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.http.keys import ADMIN, RESERVED, ApiKey, ApiKeys, known_roles
from opcatflow.engine.suggest import did_you_mean

apikey_app = typer.Typer(
    help="API keys for the HTTP API: each acts as one actor in the roles it is given."
)


def _row(key: ApiKey) -> list[str]:
    return [
        key.id,
        key.actor,
        ", ".join(key.roles),
        out.when(key.created_at),
        out.when(key.revoked_at) if key.revoked_at else "",
        out.shorten(key.note or "", 40),
    ]


@apikey_app.command("create")
def create(
    ctx: typer.Context,
    *,
    actor: Annotated[
        str, typer.Option("--actor", help="Who the key acts as (kept in the audit trail).")
    ],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help=f"A role it may act in (repeatable): a role of a loaded workflow, or {ADMIN!r} "
            "(outbox status, audit verification and export).",
        ),
    ],
    note: Annotated[str | None, typer.Option("--note", help="What the key is for.")] = None,
    as_json: Json = False,
) -> None:
    """Create a key and print it once: only its hash is stored, it cannot be shown again."""
    with settings(ctx).engine() as engine:
        known = known_roles(wf.roles for wf in engine.catalog.latest())
        for name in role:
            if name in RESERVED:
                raise fail(f"role {name!r} is reserved for the deadline scheduler", USAGE)
            if name not in known:
                raise fail(f"unknown role {name!r}{did_you_mean(name, known)}", USAGE)
        key, token = ApiKeys(engine.store, engine.clock).create(actor, role, note)
    if as_json:
        out.print_json({**key.as_json(), "key": token})
        return
    out.echo(token)
    typer.echo(
        f"key {key.id} for {key.actor} ({', '.join(key.roles)}); send it as "
        "'Authorization: Bearer <key>'. It is shown only now.",
        err=True,
    )


@apikey_app.command("list")
def list_(
    ctx: typer.Context,
    *,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    as_json: Json = False,
) -> None:
    """List keys (never their secrets), oldest first."""
    with settings(ctx).engine(existing=True) as engine:
        keys = ApiKeys(engine.store, engine.clock).list(include_revoked=revoked)
    if as_json:
        out.print_json([k.as_json() for k in keys])
        return
    if not keys:
        out.echo("no API keys")
        return
    headers = ["id", "actor", "roles", "created (UTC)", "revoked (UTC)", "note"]
    out.echo("\n".join(out.table(headers, (_row(k) for k in keys))))


@apikey_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (see `opcatflow apikey list`).")],
    as_json: Json = False,
) -> None:
    """Revoke a key: every call with it is refused (401) from now on."""
    with settings(ctx).engine() as engine:
        key = ApiKeys(engine.store, engine.clock).revoke(key_id)
    if key is None:
        raise fail(f"no API key {key_id}", NOT_FOUND)
    if as_json:
        out.print_json(key.as_json())
    else:
        out.echo(f"key {key.id} ({key.actor}) revoked")
