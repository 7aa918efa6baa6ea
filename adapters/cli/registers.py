"""``opcatflow registers``: the registers' shipped entries."""

from __future__ import annotations

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.options import Actor, Json, settings
from opcatflow.workflows.shipped import SEEDER_ROLE, seed

registers_app = typer.Typer(
    help="Registers (places, authorities, themes, people): docs/registers.md.",
    no_args_is_help=True,
)


@registers_app.command("seed")
def seed_command(ctx: typer.Context, *, actor: Actor, as_json: Json = False) -> None:
    """Add the shipped entries a database lacks: the bodies that may receive personal data
    (authority register, with their ids) and a list of themes. Entries already there, in
    any state, are left as they are; run it again after an upgrade to get new ones."""
    with settings(ctx).engine() as engine:
        added = seed(engine, actor)
    if as_json:
        out.print_json({"added": added})
        return
    for register, count in added.items():
        out.echo(f"{register}: {count} shipped entries added (as {SEEDER_ROLE})")
