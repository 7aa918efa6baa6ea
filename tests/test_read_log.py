"""The read log: every read of personal values (the HTTP API's instance, list and history
reads, the CLI's show, history and audit export, the API's audit export, subject export)
appends exactly one entry per instance: who, role, edge, instance, fields and the reason
given (the Read-Reason header, --reason), sealed; `opcatflow access-log` lists and filters
it, and the table refuses UPDATE and DELETE."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from http_server import LiveServer, live_server_fixture  # noqa: F401 - the fixture
from privacy_helpers import PRIVACY, complaint, privacy_engine
from typer.testing import CliRunner

from opcatflow.adapters.cli import app as cli
from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.readlog import read_log
from opcatflow.engine.subject_access import export_subject

PERSONAL = ["complainant", "story"]


@pytest.fixture
def served(
    live_server: LiveServer, db_url: str, clock: FrozenClock
) -> Iterator[tuple[Engine, httpx.Client, dict[str, dict[str, str]]]]:
    with privacy_engine(db_url, clock) as engine:
        keys = ApiKeys(engine.store, clock)
        roles = {"clerk": ["clerk"], "admin": ["admin"]}
        auth = {
            name: {"Authorization": f"Bearer {keys.create(f'{name}-actor', r)[1]}"}
            for name, r in roles.items()
        }
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                yield engine, client, auth
        finally:
            live_server.slot.app = None


def entries(engine: Engine) -> list[tuple[str, str, str, str | None, list[str], str | None]]:
    return [
        (e.actor, e.channel, e.what, e.instance_id, list(e.fields), e.reason)
        for e in read_log(engine, limit=1000)
    ]


def test_each_read_path_writes_one_entry(
    served: tuple[Engine, httpx.Client, dict[str, dict[str, str]]], db_url: str
) -> None:
    engine, client, auth = served
    case = complaint(engine)
    why = {"Read-Reason": "follow-up call"}
    calls = [
        client.get(f"/instances/{case}", headers={**auth["clerk"], **why}),
        client.get("/instances?workflow=p_complaint", headers=auth["clerk"]),
        client.get(f"/instances/{case}/history", headers=auth["clerk"]),
        client.get("/audit/export", headers=auth["admin"]),
    ]
    assert [c.status_code for c in calls] == [200] * 4, [c.text for c in calls]
    runner = CliRunner()
    base = ["--db", db_url, "--no-bundled", "--workflows", str(PRIVACY)]
    for command in (
        ["show", case, "--actor", "ana.op", "--reason", "audit 4"],
        ["history", case, "--actor", "ana.op"],
        ["audit", "export", "--actor", "ana.op", "--instance", case],
    ):
        result = runner.invoke(cli, [*base, *command], env={"OPCATFLOW_DB": None})
        assert result.exit_code == 0, result.output
    export_subject(engine, "ana pereira", actor="dpo", role="admin", reason="request 7")
    listed = runner.invoke(
        cli, [*base, "access-log", "--actor", "ana.op", "--json"], env={"OPCATFLOW_DB": None}
    )
    by_instance = runner.invoke(cli, [*base, "access-log", "--instance", case[:8]])
    assert entries(engine) == [
        ("clerk-actor", "http", "show", case, PERSONAL, "follow-up call"),
        ("clerk-actor", "http", "list", case, PERSONAL, None),
        ("clerk-actor", "http", "history", case, [*PERSONAL, "reasons"], None),
        ("admin-actor", "http", "audit-export", None, ["audit trail"], None),
        ("ana.op", "cli", "show", case, PERSONAL, "audit 4"),
        ("ana.op", "cli", "history", case, [*PERSONAL, "reasons"], None),
        ("ana.op", "cli", "audit-export", case, ["audit trail"], None),
        ("dpo", "api", "subject-export", case, [*PERSONAL, "reasons"], "request 7"),
    ]
    assert [e["what"] for e in json.loads(listed.stdout)["entries"]] == [
        "show", "history", "audit-export",
    ]  # fmt: skip
    assert by_instance.exit_code == 0
    assert "7 entries" in by_instance.stdout  # every read of this case, the full export aside


def test_a_role_that_sees_no_personal_value_leaves_no_entry(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        case = complaint(engine)
        result = CliRunner().invoke(
            cli,
            ["--db", db_url, "--no-bundled", "--workflows", str(PRIVACY), "show", case,
             "--role", "auditor"],
            env={"OPCATFLOW_DB": None},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "[withheld]" in result.stdout
        assert read_log(engine) == []


def test_the_read_log_is_append_only_and_its_reasons_sealed(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        export_subject(engine, "nobody", actor="dpo", role="admin", reason="Ana Pereira called")
        complaint(engine)
        export_subject(engine, "Ana Pereira", actor="dpo", role="admin", reason="Ana called")
    db = sa.create_engine(db_url if "://" in db_url else f"sqlite:///{db_url}")
    with db.connect() as conn:
        with conn.begin():
            stored = conn.execute(sa.text("SELECT reason FROM read_log")).scalars().all()
        for statement in ("UPDATE read_log SET actor = 'x'", "DELETE FROM read_log"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), conn.begin():
                conn.execute(sa.text(statement))
    db.dispose()
    assert len(stored) == 1
    assert stored[0].startswith("sealed:")
