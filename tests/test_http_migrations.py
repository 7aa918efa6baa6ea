"""POST /admin/migrations through the real HTTP app on a real server: a dry run, then the
plan applied, with per-instance refusals in the body; an admin key required; an invalid plan
answered with problem+json, every problem located."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer, live_server_fixture  # noqa: F401
from test_migration_arming import PLAN, V1, V2

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.workflows import registry

# Version 2 also requires the hearing date: a case without one is refused, alone.
STRICT_V2 = V2.replace("hearing_on: {type: date}", "hearing_on: {type: date, required: true}")


@pytest.fixture
def served(
    live_server: LiveServer, db_url: str, tmp_path: Path, clock: FrozenClock
) -> Iterator[tuple[Engine, httpx.Client, dict[str, dict[str, str]]]]:
    (tmp_path / "errand_v1.yaml").write_text(V1, "utf-8")
    (tmp_path / "errand_v2.yaml").write_text(STRICT_V2, "utf-8")
    with Engine.open(db_url, [tmp_path], registry, clock=clock) as engine:
        keys = ApiKeys(engine.store, clock)
        auth = {
            role: {"Authorization": f"Bearer {keys.create(f'{role}-actor', [role])[1]}"}
            for role in ("admin", "clerk")
        }
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=60) as client:
                yield engine, client, auth
        finally:
            live_server.slot.app = None


def test_admin_migrations_dry_run_apply_and_refusals(
    served: tuple[Engine, httpx.Client, dict[str, dict[str, str]]],
) -> None:
    engine, client, auth = served
    clerk = {"actor": "c", "role": "clerk"}
    heard = engine.start("errand", version=1, data={"hearing_on": "2026-03-20"}, **clerk).id
    unheard = engine.start("errand", version=1, **clerk).id

    refused = client.post("/admin/migrations", json={"plan": PLAN}, headers=auth["clerk"])
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")

    dry = client.post("/admin/migrations", json={"plan": PLAN}, headers=auth["admin"])
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["dry_run"], body["from"], body["to"]) == (True, 1, 2)
    outcomes = {o["instance_id"]: o for o in body["instances"]}
    assert outcomes[heard]["outcome"] == "would migrate"
    assert outcomes[unheard]["outcome"] == "refused"
    assert "hearing_on: required by version 2" in outcomes[unheard]["reason"]
    assert {engine.get(i).workflow_version for i in (heard, unheard)} == {1}

    applied = client.post(
        "/admin/migrations", json={"plan": PLAN, "dry_run": False}, headers=auth["admin"]
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["counts"] == {"migrated": 1, "refused": 1}
    assert engine.get(heard).workflow_version == 2
    assert engine.get(unheard).workflow_version == 1
    record = next(r for r in engine.history(heard) if r.outcome == "migrated")
    assert record.actor == "admin-actor"  # the key's actor, audited
    assert engine.verify_audit().ok

    bad = PLAN.replace("waiting: waiting", "waiting: waitng")
    invalid = client.post("/admin/migrations", json={"plan": bad}, headers=auth["admin"])
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith("application/problem+json")
    problem = invalid.json()
    assert problem["type"] == "urn:opcatflow:problem:invalid-plan"
    assert any(
        p.startswith("<plan>:4:") and "no state 'waitng'" in p for p in problem["problems"]
    ), problem
