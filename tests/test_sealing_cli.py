"""``db encrypt`` on a database the previous release wrote, ``keys rotate``, and
``keys export-audit-key``: what they leave, what a ``kill -9`` in the middle leaves, and the
one-line errors of a missing key (CLI exit 10, problem+json over HTTP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from http_server import LiveServer, live_server_fixture  # noqa: F401 - the fixture
from sealing_helpers import leaked, marker
from test_previous_release import old_db  # noqa: F401 - the fixture
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock, SQLAlchemyStore
from opcatflow.engine.audit import LEGACY_FORMAT, make_record
from opcatflow.engine.instance import Instance
from opcatflow.engine.rows import IdempotencyRecord, NewMessage
from opcatflow.engine.sql import tables as t
from opcatflow.workflows import BUNDLED, registry

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# What the previous release stored in clear in the fixture (docs: tests/fixtures/README).
FIXTURE_VALUES = ["Varga", "Struck by two officers"]


def cli(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--db", url, *args])
    return result.exit_code, result.stdout, result.stderr


def add_legacy_case(url: str) -> list[str]:
    """Write one more complaint as the previous release did (data, reasons, an outbox
    message and an idempotency reply in clear, keyed hashes under the database-wide key),
    through the store's own ports; returns its markers."""
    name, summary, reason, note, reply = (marker() for _ in range(5))
    store = SQLAlchemyStore(url)
    try:
        with store.write() as uow:
            data = {
                "source": "detained_person",
                "channel": "during_visit",
                "received_on": "2026-03-02",
                "persons_concerned": [name],  # version 1 of the complaint
                "summary": summary,
            }
            record = make_record(
                instance_id="legacy-1", seq=1, at=AT, actor="m", role="intake",
                workflow_id="complaint", workflow_version=1, trigger="start",
                from_state=None, to_state="received", outcome="started", reason=reason,
                changes="{}", prev_hash="0" * 64, format=LEGACY_FORMAT,
            )  # fmt: skip
            legacy = ("legacy-1", "complaint", 1, "received", data, 1, None, AT, AT, AT)
            uow.instances.insert(Instance(*legacy, 1, record.hash))
            uow.audit.append(record)
            message = NewMessage("legacy-1", "e", "email", "h", {"note": note}, "legacy-m1")
            uow.outbox.add([message], AT)
            uow.idempotency.add(
                IdempotencyRecord("k1", "i1", "POST", "/x", "f", 201, reply, {}, AT, AT)
            )
    finally:
        store.close()
    return [name, summary, reason, note, reply]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from opcatflow.engine import Engine
    from opcatflow.workflows import BUNDLED, registry
    url, what, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = []

    def die_after(fn):
        def wrapped(*args, **kw):
            calls.append(1)
            if len(calls) > after:  # mid-transaction: the kill, not an exception
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kw)
        return wrapped

    engine = Engine.open(url, [BUNDLED], registry)
    if what == "rotate":
        from opcatflow.engine.rotation import rotate
        engine.keyring.provider.wrap = die_after(engine.keyring.provider.wrap)
        rotate(engine, actor="ops", batch=3)
    else:
        from opcatflow.engine import conversion
        from opcatflow.engine.sql import maintenance
        conversion.maintenance.rewrite_audit = die_after(maintenance.rewrite_audit)
        conversion.encrypt_database(engine, actor="ops")
    """
)


def killed(url: str, what: str, after: int) -> None:
    run = subprocess.run(
        [sys.executable, "-c", KILLER, url, what, str(after)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr


@pytest.mark.slow  # a subprocess killed, then the command run again
def test_a_previous_release_database_is_sealed_after_a_kill_and_a_resume(
    old_db: str,  # noqa: F811 - the fixture
) -> None:
    markers = add_legacy_case(old_db)
    assert leaked(old_db, markers) == markers  # in clear, as the old release left them
    killed(old_db, "encrypt", after=2)  # killed inside the third instance's transaction
    code, out, err = cli(old_db, "db", "encrypt", "--actor", "ops")
    assert code == 0, err
    assert "sealed" in out
    assert "export-audit-key" in out
    assert leaked(old_db, markers + FIXTURE_VALUES) == []
    with Engine.open(old_db, [BUNDLED], registry) as engine:
        assert engine.verify_audit().ok
        case = engine.get("legacy-1")
        assert case.data["persons_concerned"] == [markers[0]]
        assert engine.history("legacy-1")[0].reason == markers[2]
        assert [r.outcome for r in engine.history("legacy-1")] == ["started", "sealed"]
        for instance in engine.query(limit=100):
            engine.history(instance.id)  # every value opens
    again = cli(old_db, "db", "encrypt", "--json")
    assert json.loads(again[1])["instances"] == 0  # nothing left to do


def test_the_database_wide_audit_key_moves_out(old_db: str, tmp_path: Path) -> None:  # noqa: F811
    target = tmp_path / "old-audit.key"
    code, out, err = cli(old_db, "keys", "export-audit-key", "--output", str(target))
    assert code == 0, err
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    store = SQLAlchemyStore(old_db)
    try:
        with store.connect() as conn:
            left = conn.execute(sa.select(t.meta.c.key).where(t.meta.c.key == "audit_key"))
            assert left.first() is None
    finally:
        store.close()
    assert cli(old_db, "audit", "verify")[0] == 0
    code, out, _ = cli(old_db, "keys", "export-audit-key", "--output", str(target) + "2")
    assert (code, "none to move out" in out) == (0, True)


@pytest.mark.slow  # a subprocess killed, then the command run again
def test_a_rotation_killed_mid_batch_resumes_and_every_value_opens(
    db_url: str, clock: FrozenClock, key_file: Path
) -> None:
    names = [marker() for _ in range(8)]
    base = {"source": "staff", "channel": "mail", "received_on": "2026-03-02"}
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        ids = [
            engine.start("complaint", actor="m", role="intake", data={**base, "summary": n}).id
            for n in names
        ]
    first = key_file.read_text()
    killed(db_url, "rotate", after=4)  # in the second batch of three
    assert len(key_file.read_text().splitlines()) == len(first.splitlines()) + 1
    code, out, err = cli(db_url, "keys", "rotate", "--actor", "ops", "--retire", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["resumed"] is True
    assert len(report["retired"]) == 1
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        assert [engine.get(i).data["summary"] for i in ids] == names
        assert engine.verify_audit().ok
        rekeyed = [r for r in engine.history(ids[0]) if r.outcome == "rekeyed"]
        assert len(rekeyed) == 1
        with engine.store.read() as uow:
            assert uow.data_keys.kek_counts() == {report["target"]: len(ids)}
    assert leaked(db_url, names) == []


def test_a_missing_key_is_one_line_and_exit_10_and_verify_still_passes(
    db_url: str, key_file: Path
) -> None:
    data = json.dumps({"source": "staff", "channel": "mail", "received_on": "2026-03-02",
                       "summary": marker()})  # fmt: skip
    code, out, err = cli(db_url, "start", "complaint", "--actor", "m", "--role", "intake",
                         "--data", data, "-q")  # fmt: skip
    assert code == 0, err
    case = out.strip()
    os.unlink(key_file)
    code, out, err = cli(db_url, "show", case)
    assert code == 10
    assert err.count("\n") == 1
    assert err.startswith("error: key-encryption key kek-")
    assert "Traceback" not in err
    assert cli(db_url, "audit", "verify")[0] == 0


def test_over_http_a_missing_key_is_a_problem_not_a_traceback(
    live_server: LiveServer, db_url: str, clock: FrozenClock, key_file: Path
) -> None:
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        base = {"source": "staff", "channel": "mail", "received_on": "2026-03-02"}
        data = {**base, "summary": marker()}
        case = engine.start("complaint", actor="m", role="intake", data=data).id
        token = ApiKeys(engine.store, clock).create("h", ["head"])[1]
    key_file.unlink()
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                response = client.get(
                    f"/instances/{case}", headers={"Authorization": f"Bearer {token}"}
                )
        finally:
            live_server.slot.app = None
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:opcatflow:problem:key-unavailable"
    assert body["key_id"].startswith("kek-")
    assert str(key_file) not in response.text
    assert "Traceback" not in response.text
