"""The recipients directory's people come from the person register; the directory file keeps
webhooks, defaults, recipients outside the NPM and how to reach a person (their locale), on
both backends: through the directory source, then through the command line's outbox."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.bulk import NewInstance
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.people import PersonRegister, PersonRegisterDirectory
from opcatflow.workflows import BUNDLED, registry

PEOPLE = [
    NewInstance(
        {
            "name": "Lina Ferreira",
            "person_kind": "staff",
            "roles": ["caseworker"],
            "email": "l.ferreira@npm.example",
        },
        "l.ferreira",
    ),
    NewInstance(
        {
            "name": "Rania Haddad",
            "person_kind": "member",
            "roles": ["head"],
            "email": "rh@npm.example",
        },
        "r.haddad",
    ),
    # no email, and the default channel is email: unreachable, so never a recipient
    NewInstance({"name": "No Mail", "person_kind": "staff", "roles": ["caseworker"]}, "no.mail"),
]
FILE = {
    "people": [
        # how the register's r.haddad is reached (the register has no locale); the name,
        # email and roles written here do not count: the register's do
        {"id": "r.haddad", "name": "Old Name", "email": "old@npm.example", "locale": "fr"},
        # a recipient outside the NPM, only in the file
        {
            "id": "focal.crp",
            "name": "Focal point",
            "email": "focal@prison.example",
            "roles": ["complaint.management"],
            "body": "prison_management",
            "consent_uses": ["share_with_management"],
        },
    ]
}
CLEAN = {"OPCATFLOW_DB": None, "OPCATFLOW_LOG_LEVEL": None, "COLUMNS": "160"}


def seed(engine: Engine) -> None:
    engine.start_many("person", PEOPLE, actor="registrar", role="head")


def test_people_come_from_the_register_and_the_file_says_how_to_reach_them(
    db_url: str, clock: FrozenClock
) -> None:
    now = [0.0]
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        seed(engine)
        base = parse_directory(yaml.safe_dump(FILE), "<directory>")
        register = PersonRegister(engine.store, engine.today)
        source = PersonRegisterDirectory(register, base, timer=lambda: now[0])
        directory = source.current()
        [caseworker] = directory.with_role("complaint", "caseworker")
        assert (caseworker.key, caseworker.address, caseworker.locale) == (
            "l.ferreira",
            "l.ferreira@npm.example",
            "en",
        )
        [head] = directory.with_role("complaint", "head")
        assert (head.name, head.address, head.locale) == ("Rania Haddad", "rh@npm.example", "fr")
        [focal] = directory.with_role("complaint", "management")
        assert focal.audience.body == "prison_management"
        assert directory.by_ids(["l.ferreira", "no.mail"])[1] == ["no.mail"]
        # Someone who left the NPM receives nothing once the register is read again.
        engine.fire(
            "l.ferreira",
            "retire",
            actor="registrar",
            role="head",
            data={"retired_on": "2026-03-02", "retired_reason": "Left the NPM."},
        )
        assert source.current().with_role("complaint", "caseworker") == [caseworker]  # cached
        now[0] = 2.0
        assert source.current().with_role("complaint", "caseworker") == []


def test_the_command_line_addresses_the_registers_people(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "recipients.yaml").write_text(yaml.safe_dump(FILE))
    settings = tmp_path / "notifications.yaml"
    settings.write_text(yaml.safe_dump({"directory": "recipients.yaml"}))
    with Engine.open(db_url, [BUNDLED], registry) as engine:
        seed(engine)
    env = {**CLEAN, "OPCATFLOW_NOTIFICATIONS": str(settings)}
    complaint = {"source": "staff", "channel": "email", "received_on": "2026-03-02"}
    started = CliRunner().invoke(
        app,
        ["--db", db_url, "start", "complaint", "--actor", "m.okafor", "--role", "intake",
         "--data", json.dumps(complaint), "-q"],
        env=env,
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    listing = CliRunner().invoke(app, ["--db", db_url, "outbox", "--json"], env=env)
    assert listing.exit_code == 0, listing.output
    messages = json.loads(listing.stdout)["messages"]
    # complaint_received goes to the caseworkers: the register's one with an email (no
    # intake officer is in the register: the acknowledgement's messages wait for one)
    sent = {(m["channel"], m["recipient"]) for m in messages}
    assert ("email", "l.ferreira") in sent
    assert not {r for _, r in sent} & {"no.mail", "r.haddad"}


def test_notify_check_and_a_checkpoint_witness_read_the_registers_people(
    db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "recipients.yaml").write_text(yaml.safe_dump(FILE))
    settings = tmp_path / "notifications.yaml"
    settings.write_text(yaml.safe_dump({"directory": "recipients.yaml"}))
    env = {**CLEAN, "OPCATFLOW_NOTIFICATIONS": str(settings)}

    def cli(*args: str) -> Result:
        return CliRunner().invoke(app, ["--db", db_url, *args], env=env)

    before = cli("notify", "check", "--json")  # no database yet: the file's people only
    assert before.exit_code == 0, before.output
    report = json.loads(before.stdout)
    assert (report["people"], report["people_from"]) == (2, "directory file")
    with Engine.open(db_url, [BUNDLED], registry) as engine:
        seed(engine)
    after = json.loads(cli("notify", "check", "--json").stdout)
    # the register's three (r.haddad once, as the register says) and the file's focal.crp
    assert (after["people"], after["people_from"]) == (4, "person register and directory file")
    assert "caseworker" in after["roles"]
    sent = cli(
        "audit", "checkpoint", "--witness", str(tmp_path / "witness"), "--send-to", "l.ferreira"
    )
    assert sent.exit_code == 0, sent.output
    queued = json.loads(cli("outbox", "--json").stdout)["messages"]
    assert ("email", "l.ferreira") in {(m["channel"], m["recipient"]) for m in queued}
