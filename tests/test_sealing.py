"""Personal values are sealed wherever the database keeps them: instance data, audit reasons,
outbox payloads, idempotency replies; on SQLite (file and WAL) and PostgreSQL (a pg_dump);
never in the logs. Without the key-encryption key they are unreadable with a clear error,
while the audit trail still verifies."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import registerkit
import sqlalchemy as sa
import structlog
from casework import ASSESS, RECORD
from helpers import changes
from http_server import LiveServer, live_server_fixture  # noqa: F401 - the fixture
from notify_helpers import notice_engine
from sealing_helpers import leaked, marker

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock, InvalidData, KeyUnavailable, compile_text
from opcatflow.engine.audit import CURRENT_FORMAT
from opcatflow.engine.crypto.providers import KeyFile, LocalKeys
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.engine.sql import tables as t
from opcatflow.notifications.model import STATUSES
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.shipped import seed


class Captured:
    """A structlog logger that keeps every event it is given, rendered as JSON."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def logger(self) -> Any:
        def keep(_logger: Any, _method: str, event: Any) -> str:
            self.lines.append(json.dumps(event, default=str))
            return ""

        return structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[keep],
            wrapper_class=structlog.make_filtering_bound_logger(0),
        )


@pytest.fixture
def casework(
    live_server: LiveServer, db_url: str, clock: FrozenClock
) -> Iterator[tuple[Engine, httpx.Client, dict[str, str], Captured]]:
    """The HTTP API over the bundled workflows, logging everything into ``Captured``."""
    captured = Captured()
    with Engine.open(db_url, [BUNDLED], registry, clock=clock, logger=captured.logger()) as engine:
        seed(engine, "opcatflow")  # the receiving bodies the complaint's decision names
        registerkit.seed(engine)  # the place and theme the complaint is recorded under
        keys = ApiKeys(engine.store, clock)
        roles = ("intake", "caseworker", "head", "auditor")
        tokens = {r: f"Bearer {keys.create(f'{r}-actor', [r])[1]}" for r in roles}
        live_server.slot.app = create_app(engine, ApiConfig(), logger=captured.logger())
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                yield engine, client, tokens, captured
        finally:
            live_server.slot.app = None


def test_a_complaint_run_leaves_no_personal_value_where_the_database_keeps_bytes(
    casework: tuple[Engine, httpx.Client, dict[str, str], Captured], db_url: str
) -> None:
    engine, client, tokens, captured = casework
    name, summary, why = marker(), marker(), marker()
    reasons = [marker() for _ in range(4)]
    data = {
        "source": "detained_person",
        "channel": "during_visit",
        "received_on": "2026-03-02",
        "persons": [{"ref": "P1", "name": name}],
        "summary": summary,
    }

    def post(path: str, role: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        headers = {"Authorization": tokens[role], "Idempotency-Key": key}
        response = client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        again = client.post(path, json=body, headers=headers)  # replayed from the record
        assert again.json() == response.json()
        result: dict[str, Any] = response.json()
        return result

    body = {"workflow": "complaint", "data": data, "reason": reasons[0]}
    case = post("/instances", "intake", body, "k0")["id"]
    fires = [
        ("acknowledge", "intake", {}),
        ("record", "intake", RECORD),
        ("assess", "caseworker", ASSESS),
    ]
    for n, (trigger, role, more) in enumerate(fires, start=1):
        fire = {"trigger": trigger, "data": more, "reason": reasons[n]}
        post(f"/instances/{case}/transitions", role, fire, f"k{n}")
    harm = {
        "append": [
            {
                "ground": "serious_violation_reprisal_risk",
                "recipient": "police_ombudsperson",
                "fields": ["summary"],
                "use": "refer",
                "decided_on": "2026-03-02",
                "expires_on": "2026-06-02",
                "why": why,
            }
        ]
    }
    fire = {"trigger": "decide_do_no_harm", "data": {"do_no_harm": harm}}
    post(f"/instances/{case}/transitions", "head", fire, "k9")

    # readable through the engine and to the roles that may read them
    stored = engine.get(case)
    assert (stored.data["persons"][0]["name"], stored.data["summary"]) == (name, summary)
    assert stored.data["do_no_harm"][0]["why"] == why
    assert [r.reason for r in changes(engine, case)][:4] == reasons
    seen = client.get(f"/instances/{case}", headers={"Authorization": tokens["head"]}).text
    assert name in seen
    assert summary in seen
    # and nowhere else: files, WAL, pg_dump, logs, the audit export, an auditor's view
    markers = [name, summary, why, *reasons]
    assert leaked(db_url, markers) == []
    assert not [m for m in markers if any(m in line for line in captured.lines)]
    export = io.StringIO()
    engine.export_audit(export)
    assert not [m for m in markers if m in export.getvalue()]
    auditor = {"Authorization": tokens["auditor"]}
    for path in (f"/instances/{case}", f"/instances/{case}/history"):
        shown = client.get(path, headers=auditor)
        assert shown.status_code in (200, 403, 404)
        assert not [m for m in markers if m in shown.text]
    with engine.store.raw.connect() as conn:
        replies = [row[0] for row in conn.execute(sa.select(t.idempotency.c.response))]
    assert len(replies) == 5
    assert all(r.startswith("sealed:") for r in replies)
    assert engine.verify_audit().ok


def test_without_the_key_file_values_are_unreadable_while_the_audit_verifies(
    db_url: str, clock: FrozenClock, key_file: Path
) -> None:
    secret = marker()
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        data = {
            "source": "detained_person",
            "channel": "during_visit",
            "received_on": "2026-03-02",
            "persons": [{"ref": "P1", "name": secret}],
            "summary": "s",
        }
        case = engine.start("complaint", actor="m", role="intake", data=data, reason="r").id
    kek = KeyFile(key_file).current(create=False)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"  # made on first use, for its owner
    key_file.unlink()
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        assert engine.verify_audit().ok
        with pytest.raises(KeyUnavailable) as caught:
            engine.get(case)
        with pytest.raises(KeyUnavailable):
            engine.fire(case, "acknowledge", actor="m", role="intake")
        assert engine.verify_audit().ok  # nothing half-written
    message = str(caught.value)
    assert kek in message
    assert "restore" in message
    assert "\n" not in message
    # a key file with another key (restored from the wrong backup) names the missing id
    KeyFile(key_file).current(create=True)
    with (
        Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine,
        pytest.raises(KeyUnavailable, match=kek),
    ):
        engine.get(case)


def test_a_child_opened_with_copied_personal_data_has_its_own_data_key(
    db_url: str, clock: FrozenClock
) -> None:
    from helpers import EXAMPLE_DIR

    from opcatflow.engine import Registry

    with Engine.open(db_url, [EXAMPLE_DIR / "linked"], Registry(), clock=clock) as engine:
        case = engine.start(
            "case",
            actor="olga",
            role="officer",
            data={"place": "Prison B", "findings": ["no light"], "severity": 3},
        ).id
        engine.fire(case, "report", actor="olga", role="officer")
        children = [c.id for c in engine.children(case)]
        with engine.store.read() as uow:
            owners = {o: uow.data_keys.get(o) for o in [case, *children]}
    assert all(owners.values())
    wrapped = {k.wrapped for k in owners.values() if k is not None}
    assert len(wrapped) == len(owners)


def test_outbox_payloads_are_sealed_and_read_back_whole(db_url: str, clock: FrozenClock) -> None:
    place = marker()
    with notice_engine(db_url, clock) as engine:
        engine.start("notice", actor="a", role="clerk", data={"place": place})
        with engine.store.read() as uow:
            messages = uow.outbox.listing(STATUSES, limit=100)
        with engine.store.raw.read() as raw:
            stored = raw.outbox.listing(STATUSES, limit=100)
    assert messages
    assert all(m.payload["context"]["data"]["place"] == place for m in messages)
    assert all(set(m.payload) == {"$sealed"} for m in stored)


def test_a_confidential_field_is_sealed_hashed_in_the_audit_and_never_a_filter(
    clock: FrozenClock,
) -> None:
    source = """
id: memo
version: 1
title: Memo
roles: {clerk: Clerk}
fields:
  source_name: {type: string, confidential: true}
  topic: {type: string}
start: {writes: [source_name, topic]}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - {trigger: close, source: open, dest: done, roles: [clerk]}
"""
    wf = compile_text(source, "memo.yaml", registry)
    assert wf.schema.sealed == frozenset({"source_name"})
    from opcatflow.engine.loader import Catalog

    store = MemoryStore()
    with Engine(store, Catalog([wf]), registry, clock=clock, keys=LocalKeys()) as engine:
        secret = marker()
        made = engine.start("memo", actor="a", role="clerk", data={"source_name": secret})
        assert engine.get(made.id).data["source_name"] == secret  # readable, not withheld
        with store.read() as raw:
            assert secret not in json.dumps(dict(raw.instances.get(made.id).data))
        (record,) = engine.history(made.id)
        assert record.format == CURRENT_FORMAT
        assert record.changed["source_name"][1].startswith("hmac-sha256:")
        with pytest.raises(InvalidData, match="source_name"):
            engine.query(workflow="memo", where={"source_name": secret})


def test_confidential_on_a_personal_or_records_field_is_refused_at_its_line() -> None:
    from opcatflow.engine import DefinitionError

    source = """
id: memo
version: 1
title: Memo
roles: {clerk: Clerk}
fields:
  name: {type: string, personal: true, confidential: true}
start: {writes: [name]}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - {trigger: close, source: open, dest: done, roles: [clerk]}
"""
    with pytest.raises(DefinitionError, match="'confidential' adds nothing") as caught:
        compile_text(source, "memo.yaml", registry)
    assert caught.value.problems[0].line == 7


def test_keys_from_the_environment_open_what_they_sealed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: FrozenClock
) -> None:
    from opcatflow.engine.crypto.providers import new_key_line

    monkeypatch.setenv("OPCATFLOW_KEK", new_key_line())
    url = str(tmp_path / "env.db")
    secret = marker()
    data = {"source": "staff", "channel": "mail", "received_on": "2026-03-02"}
    with Engine.open(url, [BUNDLED], registry, clock=clock) as engine:
        case = engine.start(
            "complaint", actor="m", role="intake", data={**data, "summary": secret}
        ).id
    with Engine.open(url, [BUNDLED], registry, clock=clock) as engine:
        assert engine.get(case).data["summary"] == secret
    assert leaked(url, [secret]) == []
    monkeypatch.delenv("OPCATFLOW_KEK")
    with (
        Engine.open(url, [BUNDLED], registry, clock=clock) as engine,
        pytest.raises(KeyUnavailable),
    ):
        engine.get(case)


def test_a_wrapped_key_copied_to_another_instance_does_not_open(
    db_url: str, clock: FrozenClock
) -> None:
    data = {"source": "staff", "channel": "mail", "received_on": "2026-03-02"}
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        a = engine.start("complaint", actor="m", role="intake", data={**data, "summary": "A"})
        b = engine.start("complaint", actor="m", role="intake", data={**data, "summary": "B"})
    store = SQLAlchemyStore(db_url)
    try:
        with store.connect(write=True) as conn:
            c = t.data_keys.c
            wrapped = conn.execute(sa.select(c.wrapped).where(c.owner == a.id)).scalar_one()
            conn.execute(t.data_keys.update().where(c.owner == b.id).values(wrapped=wrapped))
    finally:
        store.close()
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        assert engine.get(a.id).data["summary"] == "A"
        with pytest.raises(KeyUnavailable, match="altered"):
            engine.get(b.id)
