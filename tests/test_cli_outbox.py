"""`opcatflow outbox`, `outbox retry`, `outbox dispatch`, `notify test`, `notify check`, and
`validate` checking templates, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from channel_servers import smtp_server, webhook_receiver
from notify_helpers import NOTICE, SECRET, TEMPLATES
from standardwebhooks import Webhook
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app

ENV = {
    "OPCATFLOW_DB": None,
    "OPCATFLOW_ACTOR": None,
    "OPCATFLOW_ROLE": None,
    "OPCATFLOW_LOG_LEVEL": None,
    "OPCATFLOW_NOTIFICATIONS": None,
    "COLUMNS": "160",
}
Run = Callable[..., Result]


def write_config(folder: Path, smtp_port: int | None = None, webhook: str | None = None) -> Path:
    people = [
        {"id": "h.file", "name": "Head File", "channel": "file", "roles": ["head"]},
        {"id": "h.mail", "name": "Head Mail", "email": "h@npm.example", "roles": ["head"]},
    ]
    hooks = [{"id": "cases", "url": webhook, "secret": SECRET}] if webhook else []
    (folder / "recipients.yaml").write_text(yaml.safe_dump({"people": people, "webhooks": hooks}))
    settings = {
        "directory": "recipients.yaml",
        "templates": [str(TEMPLATES)],
        "file": {"path": "spool.jsonl"},
        "dispatch": {"max_attempts": 2, "backoff_base": 1, "backoff_max": 2},
    }
    if smtp_port is not None:
        settings["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "sender": "npm@npm.example"}
    path = folder / "notifications.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Run:
    config = write_config(tmp_path)

    def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
        variables = {**ENV, "OPCATFLOW_NOTIFICATIONS": str(config), **(env or {})}
        argv = ["--db", db_url, "--no-bundled", "--workflows", str(NOTICE.parent), *args]
        return CliRunner().invoke(app, argv, env=variables)

    return run


def start(cli: Run) -> None:
    result = cli("start", "notice", "--actor", "m.okafor", "--role", "clerk", "-s", "place=P")
    assert result.exit_code == 0, result.output


def test_started_instances_fill_the_outbox_and_the_listing_shows_them(cli: Run) -> None:
    start(cli)
    listing = json.loads(cli("outbox", "--json").stdout)
    assert listing["counts"]["pending"] == 2
    assert sorted((m["channel"], m["recipient"]) for m in listing["messages"]) == [
        ("email", "h.mail"),
        ("file", "h.file"),
    ]
    assert "payload" not in listing["messages"][0]
    table = cli("outbox").stdout
    assert "notice.enter.open" in table
    assert "2 pending, 0 sending, 0 sent, 0 failed, 0 dead" in table


def test_dispatch_delivers_and_a_dead_message_can_be_retried(cli: Run, tmp_path: Path) -> None:
    start(cli)
    result = json.loads(cli("outbox", "dispatch", "--once", "--json").stdout)
    assert result == {"claimed": 2, "sent": 1, "failed": 0, "dead": 1, "routed": 0}
    [line] = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert json.loads(line)["subject"] == "started open for Head File: None"
    dead = json.loads(cli("outbox", "--json", "--status", "dead").stdout)["messages"]
    assert dead[0]["last_error"] == "channel 'email' is not configured"
    retried = cli("outbox", "retry", str(dead[0]["id"]))
    assert retried.exit_code == 0, retried.output
    assert "is pending again" in retried.stdout
    sent = json.loads(cli("outbox", "--json", "--status", "sent").stdout)["messages"]
    again = cli("outbox", "retry", str(sent[0]["id"]))
    assert again.exit_code == 3
    assert "is sent: nothing to retry" in again.stderr
    missing = cli("outbox", "retry", "999999")
    assert missing.exit_code == 5
    assert "no outbox message 999999" in missing.stderr


def test_an_unknown_status_is_a_usage_error(cli: Run) -> None:
    result = cli("outbox", "--status", "lost")
    assert result.exit_code == 2
    assert "unknown status 'lost'" in result.stderr


def test_notify_test_sends_straight_through_each_channel(db_url: str, tmp_path: Path) -> None:
    with smtp_server() as (mailbox, port), webhook_receiver() as receiver:
        config = write_config(tmp_path, smtp_port=port, webhook=receiver.url + "/h")
        env = {**ENV, "OPCATFLOW_NOTIFICATIONS": str(config)}

        def run(*args: str) -> Result:
            return CliRunner().invoke(app, ["--db", db_url, *args], env=env)

        assert (
            run("notify", "test", "email", "someone@npm.example", "--locale", "fr").exit_code == 0
        )
        assert run("notify", "test", "email", "h.mail").exit_code == 0
        assert run("notify", "test", "webhook", "cases").exit_code == 0
        assert run("notify", "test", "file", "h.file").exit_code == 0
        unknown = run("notify", "test", "pigeon", "x")
        bad = run("notify", "test", "email", "not-an-address")
        failing = run("notify", "test", "webhook", "nobody")
    assert [m["Subject"] for m in mailbox.messages] == [
        "Message de test opcatflow",
        "opcatflow test message",
    ]
    assert [e[1] for e in mailbox.envelopes] == [["someone@npm.example"], ["h@npm.example"]]
    event = Webhook(SECRET).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert event["type"] == "org.opcatflow.test"
    assert "Head File" in json.loads((tmp_path / "spool.jsonl").read_text())["text"]
    assert unknown.exit_code == 2
    assert "channel 'pigeon' is not configured" in unknown.stderr
    assert bad.exit_code == 2
    assert failing.exit_code == 1
    assert "not in the recipients directory" in failing.stderr


def test_notify_check_reports_the_setup_and_located_problems(cli: Run, tmp_path: Path) -> None:
    report = json.loads(cli("notify", "check", "--json").stdout)
    assert report["people"] == 2
    assert report["channels"] == ["file", "log", "webhook"]
    (tmp_path / "recipients.yaml").write_text("people: [{id: x, name: X}]\n")
    broken = cli("notify", "check")
    assert broken.exit_code == 6
    assert "recipients.yaml:1:10: 'x' is reached by email but has no 'email'" in broken.stderr


def test_commands_that_need_the_settings_say_so(cli: Run) -> None:
    result = cli("outbox", "dispatch", "--once", env={"OPCATFLOW_NOTIFICATIONS": None})
    assert result.exit_code == 6
    assert "no notifications settings" in result.stderr


def test_validate_checks_the_templates_a_definition_names(tmp_path: Path) -> None:
    definition = tmp_path / "notice.yaml"
    definition.write_text(
        NOTICE.read_text().replace("template: notice_opened", "template: nope", 1)
    )
    result = CliRunner().invoke(app, ["validate", str(definition)], env=ENV)
    assert result.exit_code == 6
    assert f"{definition}:45:15: unknown template 'nope'" in result.stdout
