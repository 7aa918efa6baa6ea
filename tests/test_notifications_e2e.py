"""From a transition to a received email and a verified webhook: the bundled complaint
workflow, the outbox, the dispatcher and the real channels on loopback servers."""

from __future__ import annotations

import random

import registerkit
import yaml
from channel_servers import smtp_server, webhook_receiver
from notify_helpers import SECRET
from standardwebhooks import Webhook

from opcatflow.adapters.channels import SmtpChannel, WebhookChannel
from opcatflow.engine import Engine, FrozenClock, SystemClock
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.dispatcher import Dispatcher
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.templates import TemplateSet
from opcatflow.notifications.titles import title_fields
from opcatflow.workflows import BUNDLED, registry

COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-01",
    "institution": registerkit.PLACE,  # shown by its title, "Central Remand Prison"
    "persons": [{"ref": "P1", "name": "Ana Pereira"}],
    "summary": "Beaten in cell 14 by two officers on 27 February.",
}


def test_a_complaint_reaches_the_caseworker_by_email_and_the_case_system_by_webhook(
    db_url: str, clock: FrozenClock
) -> None:
    with smtp_server() as (mailbox, port), webhook_receiver() as receiver:
        directory = parse_directory(
            yaml.safe_dump(
                {
                    "people": [
                        {
                            "id": "r.haddad",
                            "name": "Rania Haddad",
                            "email": "r.haddad@npm.example",
                            "locale": "fr",
                            "roles": ["caseworker"],
                        }
                    ],
                    "webhooks": [
                        {
                            "id": "cases",
                            "url": receiver.url + "/events",
                            "secret": SECRET,
                            "workflows": ["complaint"],
                        }
                    ],
                }
            ),
            "<directory>",
        )
        with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
            registerkit.seed(engine)
            titles = title_fields(engine.catalog)
        hooks = [OutboxWriter(directory, titles=titles)]
        with Engine.open(db_url, [BUNDLED], registry, clock=clock, hooks=hooks) as engine:
            instance = engine.start("complaint", actor="m.okafor", role="intake", data=COMPLAINT)
            channels = {
                "email": SmtpChannel("127.0.0.1", port, sender="NPM <noreply@npm.example>"),
                # receivers check webhook-timestamp against their own clock: sign with real time
                "webhook": WebhookChannel(directory, clock=SystemClock()),
            }
            dispatcher = Dispatcher(
                engine.store,
                channels,
                templates=TemplateSet(),
                directory=directory,
                clock=clock,
                rng=random.Random(1),
            )
            stats = dispatcher.drain()
            for channel in channels.values():
                channel.close()
    assert (stats.sent, stats.failed, stats.dead) == (2, 0, 0)
    [email] = mailbox.messages
    assert email["To"] == "Rania Haddad <r.haddad@npm.example>"
    assert email["Subject"].startswith("Nouvelle plainte reçue concernant Central Remand Prison")
    body = email.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Central Remand Prison" in text
    assert "aucun consentement" in text
    assert "Ana" not in email.as_string()
    assert "Beaten" not in email.as_string()
    [request] = receiver.requests
    event = Webhook(SECRET).verify(request.body, request.headers)
    assert event["type"] == "org.opcatflow.instance.started"
    assert event["subject"] == instance.id
    assert event["data"]["state"] == "received"
    assert event["data"]["data"]["institution"] == registerkit.PLACE  # machines get the id
    assert b"Ana" not in request.body
    assert b"Beaten" not in request.body
