"""``outbox`` (list, retry, dispatch) and ``notify`` (test, check).

The notifications settings file comes from ``--config`` or ``$OPCATFLOW_NOTIFICATIONS``; see
``config/notifications.example.yaml``. Listing and retrying need only the database.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from structlog.typing import FilteringBoundLogger

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.database import has_database
from opcatflow.adapters.cli.errors import REFUSED, USAGE, fail
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.notifier import Notifications, settings_path
from opcatflow.engine import Clock, Engine, SystemClock
from opcatflow.engine.errors import NotFound, Problem
from opcatflow.engine.rows import RETRYABLE_OUTBOX as RETRYABLE
from opcatflow.notifications.channel import DeliveryError, Outgoing
from opcatflow.notifications.directory import EMAIL, ConfigError
from opcatflow.notifications.model import (
    DEAD,
    FAILED,
    PENDING,
    STATUSES,
    OutboxEntry,
    OutboxStatus,
)
from opcatflow.notifications.people import PersonRegister
from opcatflow.notifications.settings import ENV
from opcatflow.notifications.templates import CONTEXT

outbox_app = typer.Typer(
    help="The notification outbox: what waits, what failed, what went dead.",
    invoke_without_command=True,
)
notify_app = typer.Typer(help="Check the notifications setup and send test messages.")

Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=ENV,
        help="Notifications settings file.",
        metavar="FILE",
        show_default=False,
    ),
]


class MessageNotFound(NotFound):
    """No outbox message has this id."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        super().__init__(f"no outbox message {message_id}")


def _notifications(
    config: Path | None, logger: FilteringBoundLogger, engine: Engine | None = None
) -> Notifications:
    path = settings_path(config)
    if path is None:
        raise ConfigError(
            [
                Problem(
                    "<command line>", 1, 1, f"no notifications settings: pass --config or set {ENV}"
                )
            ]
        )
    register = PersonRegister(engine.store, engine.today) if engine is not None else None
    return Notifications.load(path, logger=logger, register=register)


def _entry_row(e: OutboxEntry) -> list[str]:
    due = out.when(e.next_attempt_at) if e.status in (PENDING, FAILED) else ""
    return [
        str(e.id),
        e.status,
        str(e.attempts),
        e.channel,
        out.shorten(e.recipient, 30),
        out.shorten(e.event, 36),
        due,
        out.shorten(e.last_error or "", 50),
    ]


@outbox_app.callback()
def outbox(
    ctx: typer.Context,
    *,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help=f"Only this status (repeatable): {', '.join(STATUSES)}. "
            "[default: pending, failed, dead]",
            metavar="STATUS",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    as_json: Json = False,
) -> None:
    """List outbox messages that are pending, failed or dead (oldest first)."""
    if ctx.invoked_subcommand is not None:
        return
    wanted = status or [PENDING, FAILED, DEAD]
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise fail(f"unknown status {unknown[0]!r} (use {', '.join(STATUSES)})", USAGE)
    with settings(ctx).engine(existing=True) as engine, engine.store.read() as uow:
        entries = uow.outbox.listing([OutboxStatus(s) for s in wanted], limit=limit)
        counts = uow.outbox.counts()
    if as_json:
        out.print_json(
            {
                "counts": {s: counts.get(s, 0) for s in STATUSES},
                "messages": [e.as_json() for e in entries],
            }
        )
        return
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    if not entries:
        out.echo(f"no {' / '.join(wanted)} messages ({summary})")
        return
    headers = ["id", "status", "tries", "channel", "recipient", "event", "next try", "last error"]
    out.echo("\n".join(out.table(headers, (_entry_row(e) for e in entries))))
    out.echo(out.dim(summary))


@outbox_app.command("retry")
def retry(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(help="The message id (see `opcatflow outbox`).")],
    as_json: Json = False,
) -> None:
    """Send a failed or dead message again: it becomes due now, with a fresh count of tries."""
    with settings(ctx).engine() as engine, engine.store.write() as uow:
        before = uow.outbox.retry(message_id, engine.clock.now())
    if before is None:
        raise MessageNotFound(message_id)
    if before.status not in RETRYABLE:
        raise fail(f"message {message_id} is {before.status}: nothing to retry", REFUSED)
    if as_json:
        out.print_json({"id": message_id, "was": before.status, "status": PENDING})
    else:
        out.echo(f"message {message_id} ({before.event} to {before.recipient}) is pending again")


@outbox_app.command("dispatch")
def dispatch(
    ctx: typer.Context,
    *,
    config: Config = None,
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Deliver outbox messages (until interrupted, or once with --once)."""
    s = settings(ctx)
    log = s.logger()
    with s.engine() as engine:
        # messages still to route are resolved against the person register's people
        notifications = _notifications(config, log, engine)
        dispatcher = notifications.dispatcher(
            engine.store, clock=engine.clock, sharing=engine.settings.policy
        )
        if not once:
            stop = threading.Event()
            try:
                dispatcher.run(stop, idle=notifications.settings.dispatch.idle)
            except KeyboardInterrupt:
                stop.set()
            return
        try:
            stats = dispatcher.drain()
        finally:
            for channel in dispatcher.channels.values():
                channel.close()
    result = {
        "claimed": stats.claimed,
        "sent": stats.sent,
        "failed": stats.failed,
        "dead": stats.dead,
        "routed": stats.routed,
    }
    if as_json:
        out.print_json(result)
    else:
        out.echo(", ".join(f"{v} {k}" for k, v in result.items()))


def _test_message(
    notifications: Notifications, channel: str, recipient: str, locale: str | None, clock: Clock
) -> Outgoing:
    directory = notifications.directory.current()
    person = directory.people.get(recipient)
    name, address = recipient, None
    lang = locale or directory.defaults.locale
    if person is not None:
        name, address = person.name, person.email
        lang = locale or person.locale or lang
    elif channel == "email":
        if not EMAIL.match(recipient):
            raise fail(f"{recipient!r} is neither an email address nor a person id", USAGE)
        address = recipient
    now: datetime = clock.now()
    key = uuid.uuid4().hex
    context = {
        "workflow": {"id": "test", "version": 1, "title": "Test"},
        "instance": {
            "id": key,
            "state": "test",
            "state_label": "Test",
            "version": 1,
            "parent_id": None,
            "created_at": now.isoformat(),
        },
        "event": {
            **dict.fromkeys(CONTEXT["event"] or ()),
            "kind": "test",
            "at": now.isoformat(),
        },
        "recipient": {"name": name, "locale": lang},
        "data": {},
        "labels": {},
        "withheld": [],
        "reason": None,
    }
    rendered = notifications.templates.render("test_message", lang, context)
    cloudevent = {
        "specversion": "1.0",
        "id": key,
        "source": "urn:opcatflow:test",
        "type": "org.opcatflow.test",
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        "data": {"message": rendered.text.strip()},
    }
    return Outgoing(
        id=0,
        idempotency_key=key,
        channel=channel,
        event="test",
        recipient=recipient,
        name=name,
        address=address,
        locale=rendered.locale,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        cloudevent=cloudevent,
        instance_id=None,
        created_at=now,
        attempt=1,
    )


@notify_app.command("test")
def send_test(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="email, webhook, log or file.")],
    recipient: Annotated[
        str,
        typer.Argument(
            help="A person id from the directory, an email address (email), or a webhook "
            "endpoint id (webhook)."
        ),
    ],
    *,
    config: Config = None,
    locale: Annotated[
        str | None, typer.Option("--locale", help="Language of the message (en, fr, es...).")
    ] = None,
) -> None:
    """Send a test message straight through one channel (not through the outbox).

    Exit 1 when the channel fails, with its error.
    """
    s = settings(ctx)
    notifications = _notifications(config, s.logger())
    clock = SystemClock()
    channels = notifications.channels(clock=clock)
    try:
        if channel not in channels:
            known = ", ".join(sorted(channels))
            raise fail(f"channel {channel!r} is not configured (configured: {known})", USAGE)
        message = _test_message(notifications, channel, recipient, locale, clock)
        try:
            channels[channel].send(message)
        except DeliveryError as err:
            kind = "permanent" if err.permanent else "temporary"
            raise fail(f"{channel} failed ({kind}): {err}", 1) from None
    finally:
        for c in channels.values():
            c.close()
    out.echo(f"{out.green('sent')} a test message to {recipient} over {channel}")


@notify_app.command("check")
def check(ctx: typer.Context, *, config: Config = None, as_json: Json = False) -> None:
    """Check the settings, the recipients directory and the templates the workflows name.
    The people are those the notifications reach: the database's person register, if the
    database exists, over the directory file."""
    s = settings(ctx)
    with ExitStack() as opened:
        # A check may run before the first start: no database, then the file's people only.
        # The engine's store, not the bare one: a person's contact details are sealed at rest.
        exists = has_database(s.db)
        engine = opened.enter_context(s.engine(existing=True)) if exists else None
        notifications = _notifications(config, s.logger(), engine)
        notifications.check(s.catalog())
        directory = notifications.directory.current()
    roles = sorted({r for p in directory.people.values() for r in p.roles})
    channels = notifications.channel_names()
    summary = {
        "people": len(directory.people),
        "people_from": "person register and directory file" if engine else "directory file",
        "webhooks": sorted(directory.endpoints),
        "roles": roles,
        "channels": channels,
        "templates": sorted(notifications.templates.names()),
    }
    if as_json:
        out.print_json({"ok": True, **summary})
        return
    out.echo(
        f"{out.green('ok')}  {len(directory.people)} people ({summary['people_from']}), "
        f"{out.plural(len(directory.endpoints), 'webhook')}, channels: "
        f"{', '.join(channels)}; roles: {', '.join(roles) or 'none'}"
    )
