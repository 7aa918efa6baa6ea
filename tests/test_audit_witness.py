"""Checkpoints sent to an outside witness through the outbox (``audit checkpoint --send-to``,
``worker --checkpoint-send-to``): a real SMTP server and a real webhook receiver get a
checkpoint that ``audit verify --checkpoint`` accepts, and nothing personal with it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from channel_servers import smtp_server, webhook_receiver
from notify_helpers import SECRET
from standardwebhooks import Webhook
from test_audit_anchor import TINY, logged, stop_worker
from test_catalogue import wait_for
from test_cli_serve import environment
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine
from opcatflow.engine.checkpoint import parse_checkpoint
from opcatflow.notifications.checkpoints import CLOUDEVENT_TYPE
from opcatflow.workflows import registry

SECRET_NAME = "Ana Quetzalcoatl"  # personal: must reach no witness


def write_settings(folder: Path, smtp_port: int, webhook: str) -> Path:
    people = [{"id": "board", "name": "The Board", "email": "board@witness.example"}]
    hooks = [{"id": "notary", "url": webhook, "secret": SECRET}]
    (folder / "recipients.yaml").write_text(yaml.safe_dump({"people": people, "webhooks": hooks}))
    settings = {
        "directory": "recipients.yaml",
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "npm@npm.example"},
        "dispatch": {"max_attempts": 2, "backoff_base": 1, "backoff_max": 2, "idle": 0.2},
    }
    path = folder / "notifications.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def tiny_case(tmp_path: Path, db_url: str) -> Path:
    """The tiny workflow's folder, with one case holding a personal value."""
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "tiny.yaml").write_text(TINY)
    with Engine.open(db_url, [folder], registry) as engine:
        engine.start("tiny", actor="cleo", role="clerk", data={"name": SECRET_NAME})
    return folder


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Callable[..., Result]:
    folder = tiny_case(tmp_path, db_url)

    def run(*args: str, settings: Path | None = None) -> Result:
        env = {"OPCATFLOW_NOTIFICATIONS": str(settings) if settings else None}
        argv = ["--db", db_url, "--no-bundled", "--workflows", str(folder), *args]
        return CliRunner().invoke(app, argv, env=env)

    return run


def attachment(message: EmailMessage) -> tuple[str, str]:
    [part] = list(message.iter_attachments())
    content = part.get_content()  # application/json: the file's bytes, as a mail client saves
    assert isinstance(content, bytes)
    return str(part.get_filename()), content.decode("utf-8")


def test_a_checkpoint_reaches_a_mailbox_and_a_webhook_and_each_copy_verifies(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    with smtp_server() as (mailbox, port), webhook_receiver() as receiver:
        settings = write_settings(tmp_path, port, receiver.url + "/witness")
        for recipient in ("board", "notary"):
            sent = cli(
                "audit", "checkpoint", "--witness", str(witness), "--send-to", recipient,
                "--json", settings=settings,
            )  # fmt: skip
            assert sent.exit_code == 0, sent.output
            assert json.loads(sent.stdout)["sent_to"] == recipient
        delivered = cli("outbox", "dispatch", "--once", "--json", settings=settings)
        assert json.loads(delivered.stdout)["sent"] == 2, delivered.output

    [email] = mailbox.messages
    assert email["To"] == "The Board <board@witness.example>"
    name, text = attachment(email)
    assert name.startswith("checkpoint-")
    assert name.endswith(".json")
    mailed = tmp_path / name
    mailed.write_text(text)
    body = email.get_body(("plain",))
    assert body is not None
    assert "Signing key fingerprint: SHA256:" in body.get_content()

    [request] = receiver.requests
    event = Webhook(SECRET).verify(request.body, request.headers)  # signed as every webhook
    assert event["type"] == CLOUDEVENT_TYPE
    assert event["data"]["key_fingerprint"] in body.get_content()  # one key, one fingerprint
    posted = tmp_path / "posted.json"
    posted.write_text(json.dumps(event["data"]))

    for copy in (mailed, posted):
        verified = cli("audit", "verify", "--checkpoint", str(copy))
        assert verified.exit_code == 0, verified.output
        assert "intact" in verified.stdout
    # what the witnesses hold: a size, a root, a time, a key; no personal value
    for held in (email.as_string(), request.body.decode(), text):
        assert "Quetzalcoatl" not in held
    assert set(parse_checkpoint(text, name).body()) == {
        "version", "origin", "size", "root", "time", "key", "reads",
    }  # fmt: skip


def test_an_unknown_recipient_or_no_directory_is_refused_before_anything_is_signed(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    settings = write_settings(tmp_path, 25, "http://127.0.0.1:9/none")
    unknown = cli(
        "audit", "checkpoint", "--witness", str(witness), "--send-to", "nobody", settings=settings
    )
    assert unknown.exit_code == 5, unknown.output
    assert "no recipient 'nobody' in the recipients directory" in unknown.stderr
    assert "board, notary" in unknown.stderr
    unset = cli("audit", "checkpoint", "--witness", str(witness), "--send-to", "board")
    assert unset.exit_code == 6, unset.output
    assert "set OPCATFLOW_NOTIFICATIONS=FILE" in unset.stderr
    assert not witness.exists()  # nothing signed, nothing written
    worker = cli("worker", "--checkpoint-send-to", "nobody", settings=settings)
    assert worker.exit_code == 5, worker.output


def test_the_worker_sends_its_checkpoints_to_the_witness_webhook(tmp_path: Path) -> None:
    db = str(tmp_path / "opcatflow.db")
    folder = tiny_case(tmp_path, db)
    log = tmp_path / "worker.log"
    with smtp_server() as (_, port), webhook_receiver() as receiver:
        settings = write_settings(tmp_path, port, receiver.url + "/witness")
        command = [sys.executable, "-m", "opcatflow.adapters.cli", "--db", db, "--no-bundled"]
        command += ["--log-level", "info", "--log-format", "json", "--workflows", str(folder)]
        command += ["worker", "--checkpoint-every", "1", "--witness", str(tmp_path / "w")]
        command += ["--checkpoint-send-to", "notary"]
        env = {**environment(), "OPCATFLOW_NOTIFICATIONS": str(settings)}
        with log.open("wb") as err:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(lambda: bool(receiver.requests), "no checkpoint reached the webhook")
        finally:
            stop_worker(process, log)
    assert logged(log, "audit_checkpoint_queued")
    event = Webhook(SECRET).verify(receiver.requests[0].body, receiver.requests[0].headers)
    posted = tmp_path / "posted.json"
    posted.write_text(json.dumps(event["data"]))
    argv = ["--db", db, "--no-bundled", "--workflows", str(folder), "audit", "verify"]
    verified = CliRunner().invoke(app, [*argv, "--checkpoint", str(posted)])
    assert verified.exit_code == 0, verified.output
