"""The delivery channels against real servers on loopback: SMTP (aiosmtpd, with STARTTLS and
authentication) and an HTTP webhook receiver whose requests are verified with the
``standardwebhooks`` package; the log and file channels."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from channel_servers import client_tls, free_port, smtp_server, webhook_receiver
from notify_helpers import SECRET, make_directory
from standardwebhooks import Webhook, WebhookVerificationError

from opcatflow.adapters.channels import FileChannel, LogChannel, SmtpChannel, WebhookChannel
from opcatflow.notifications.channel import DeliveryError, Outgoing

KEY = "3f1c" * 16
CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def outgoing(**changes: object) -> Outgoing:
    values: dict[str, object] = {
        "id": 7,
        "idempotency_key": KEY,
        "channel": "email",
        "event": "complaint.enter.received",
        "recipient": "r.haddad",
        "name": "Rania Haddad",
        "address": "r.haddad@npm.example",
        "locale": "fr",
        "subject": "Nouvelle plainte reçue — prison « Centrale »",
        "text": "Bonjour,\nUne plainte a été reçue.\n",
        "html": "<p>Bonjour,</p><p>Une plainte a été reçue.</p>\n",
        "cloudevent": {"specversion": "1.0", "id": KEY, "type": "t", "source": "s", "data": {}},
        "instance_id": "i-1",
        "created_at": CREATED,
        "attempt": 1,
    }
    values.update(changes)
    return Outgoing(**values)  # type: ignore[arg-type]


# -- SMTP ------------------------------------------------------------------------------------


def test_smtp_sends_a_text_and_html_email_that_carries_the_idempotency_key() -> None:
    with smtp_server() as (mailbox, port):
        channel = SmtpChannel("127.0.0.1", port, sender="NPM <noreply@npm.example>")
        try:
            channel.send(outgoing())
            channel.send(outgoing(idempotency_key="a" * 64, address="l.garcia@npm.example"))
        finally:
            channel.close()
    first = mailbox.messages[0]
    assert first["Subject"] == "Nouvelle plainte reçue — prison « Centrale »"
    assert first["To"] == "Rania Haddad <r.haddad@npm.example>"
    assert first["From"] == "NPM <noreply@npm.example>"
    assert first["Message-ID"].strip() == f"<{KEY}@opcatflow>"  # folded: a long header
    assert first["X-Opcatflow-Idempotency-Key"].strip() == KEY
    assert first["Content-Language"] == "fr"
    assert first.get_content_type() == "multipart/alternative"
    text = first.get_body(preferencelist=("plain",))
    html = first.get_body(preferencelist=("html",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n") == "Bonjour,\nUne plainte a été reçue.\n"
    assert html is not None
    assert "<p>Une plainte a été reçue.</p>" in html.get_content()
    assert [e[1] for e in mailbox.envelopes] == [["r.haddad@npm.example"], ["l.garcia@npm.example"]]
    assert mailbox.envelopes[0][2] == mailbox.envelopes[1][2]  # one kept-open connection


def test_smtp_with_starttls_and_authentication() -> None:
    with smtp_server(starttls=True, user="opcatflow", password="s3cret") as (mailbox, port):
        channel = SmtpChannel(
            "127.0.0.1",
            port,
            sender="noreply@npm.example",
            starttls=True,
            username="opcatflow",
            password="s3cret",
            ssl_context=client_tls(),
        )
        try:
            channel.send(outgoing(html=None))
        finally:
            channel.close()
    assert mailbox.logins == ["opcatflow"]
    assert mailbox.messages[0].get_content_type() == "text/plain"


def test_smtp_refuses_to_log_in_without_starttls_when_the_server_requires_it() -> None:
    with smtp_server(starttls=True, user="opcatflow", password="s3cret") as (mailbox, port):
        channel = SmtpChannel(
            "127.0.0.1", port, sender="noreply@npm.example", username="opcatflow", password="x"
        )
        with pytest.raises(DeliveryError) as caught:
            channel.send(outgoing())
        channel.close()
    assert not caught.value.permanent
    assert mailbox.messages == []


def test_smtp_wrong_password_is_a_delivery_error() -> None:
    with smtp_server(starttls=True, user="opcatflow", password="s3cret") as (mailbox, port):
        channel = SmtpChannel(
            "127.0.0.1",
            port,
            sender="noreply@npm.example",
            starttls=True,
            username="opcatflow",
            password="wrong",
            ssl_context=client_tls(),
        )
        with pytest.raises(DeliveryError, match="login refused"):
            channel.send(outgoing())
        channel.close()
    assert mailbox.messages == []


def test_smtp_a_refused_mailbox_is_a_permanent_error() -> None:
    with smtp_server() as (mailbox, port):
        mailbox.refuse.add("r.haddad@npm.example")
        channel = SmtpChannel("127.0.0.1", port, sender="noreply@npm.example")
        with pytest.raises(DeliveryError) as caught:
            channel.send(outgoing())
        channel.send(outgoing(address="other@npm.example"))  # the connection is still usable
        channel.close()
    assert caught.value.permanent
    assert len(mailbox.messages) == 1


def test_smtp_an_unreachable_server_is_a_temporary_error() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), sender="noreply@npm.example", timeout=2)
    with pytest.raises(DeliveryError) as caught:
        channel.send(outgoing())
    assert not caught.value.permanent


def test_smtp_a_message_without_address_is_a_permanent_error() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), sender="noreply@npm.example")
    with pytest.raises(DeliveryError) as caught:
        channel.send(outgoing(address=None))
    assert caught.value.permanent


# -- webhook ---------------------------------------------------------------------------------


def webhook_channel(url: str, timeout: float = 5.0) -> WebhookChannel:
    directory = make_directory(webhooks=[{"id": "cases", "url": url + "/hook", "secret": SECRET}])
    return WebhookChannel(directory, timeout=timeout)


def test_webhook_posts_a_cloudevent_signed_per_standard_webhooks() -> None:
    event = {
        "specversion": "1.0",
        "id": KEY,
        "source": "urn:opcatflow:workflow:complaint",
        "type": "org.opcatflow.transition.applied",
        "subject": "i-1",
        "time": CREATED.isoformat(),
        "datacontenttype": "application/json",
        "data": {"state": "acting", "place": "Prison « Centrale »"},
    }
    with webhook_receiver() as receiver:
        channel = webhook_channel(receiver.url)
        try:
            channel.send(outgoing(channel="webhook", recipient="cases", cloudevent=event))
        finally:
            channel.close()
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    assert request.headers["webhook-id"] == KEY
    assert Webhook(SECRET).verify(request.body, request.headers) == event
    tampered = request.body.replace(b"acting", b"closed")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)
    other_secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("status", "permanent"), [(500, False), (503, False), (429, False), (400, True), (410, True)]
)
def test_webhook_error_answers_are_temporary_or_permanent(status: int, permanent: bool) -> None:
    with webhook_receiver() as receiver:
        receiver.status = status
        channel = webhook_channel(receiver.url)
        with pytest.raises(DeliveryError) as caught:
            channel.send(outgoing(channel="webhook", recipient="cases"))
        channel.close()
    assert caught.value.permanent is permanent
    assert f"HTTP {status}" in str(caught.value)


def test_webhook_does_not_follow_redirects() -> None:
    with webhook_receiver() as receiver:
        receiver.status = 302
        receiver.location = receiver.url + "/elsewhere"
        channel = webhook_channel(receiver.url)
        with pytest.raises(DeliveryError) as caught:
            channel.send(outgoing(channel="webhook", recipient="cases"))
        channel.close()
    assert caught.value.permanent
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_webhook_times_out_on_a_receiver_that_does_not_answer() -> None:
    with webhook_receiver() as receiver:
        receiver.hold = threading.Event()
        channel = webhook_channel(receiver.url, timeout=0.3)
        with pytest.raises(DeliveryError, match="timed out") as caught:
            channel.send(outgoing(channel="webhook", recipient="cases"))
        channel.close()
    assert not caught.value.permanent


def test_webhook_calls_only_endpoints_of_the_directory() -> None:
    with webhook_receiver() as receiver:
        channel = webhook_channel(receiver.url)
        event = {"specversion": "1.0", "url": "http://127.0.0.1:1/evil"}
        with pytest.raises(DeliveryError, match="not in the recipients directory") as caught:
            channel.send(outgoing(channel="webhook", recipient="unknown", cloudevent=event))
        channel.close()
    assert caught.value.permanent
    assert receiver.requests == []


# -- log and file ------------------------------------------------------------------------------


def test_the_log_channel_logs_one_structured_event_per_message() -> None:
    with structlog.testing.capture_logs() as logs:
        LogChannel(structlog.get_logger()).send(outgoing(channel="log"))
    [entry] = logs
    assert entry["event"] == "notification"
    assert entry["idempotency_key"] == KEY
    assert entry["subject"] == "Nouvelle plainte reçue — prison « Centrale »"
    assert entry["notification_event"] == "complaint.enter.received"


def test_the_file_channel_appends_one_json_line_per_message(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "outbox.jsonl"
    channel = FileChannel(path)
    channel.send(outgoing(channel="file"))
    channel.send(outgoing(channel="file", idempotency_key="b" * 64))
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [line["idempotency_key"] for line in lines] == [KEY, "b" * 64]
    assert lines[0]["subject"] == "Nouvelle plainte reçue — prison « Centrale »"
    assert lines[0]["created_at"] == CREATED.isoformat()


def test_the_file_channel_reports_a_path_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeliveryError, match="cannot write"):
        FileChannel(blocker / "outbox.jsonl").send(outgoing(channel="file"))
