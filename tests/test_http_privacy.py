"""Erasure and subject access over HTTP: ``POST /instances/{id}/erasure``, ``POST
/subjects/erasure`` and ``POST /subjects/export``, with roles checked as the command line
checks them, problem+json on every refusal, and the export in the read log."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from http_server import LiveServer, live_server_fixture  # noqa: F401 - the fixture
from privacy_helpers import complaint, privacy_engine

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.erasure import is_erased
from opcatflow.engine.readlog import read_log

Served = tuple[Engine, httpx.Client, dict[str, dict[str, str]]]
PROBLEM = "application/problem+json"
WHY = {"reason": "request 12", "legal_basis": "Data protection act, art. 17"}


@pytest.fixture
def served(live_server: LiveServer, db_url: str, clock: FrozenClock) -> Iterator[Served]:
    with privacy_engine(db_url, clock) as engine:
        keys = ApiKeys(engine.store, clock)
        roles = {"clerk": ["clerk"], "head": ["head"], "admin": ["admin"]}
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


def test_erasure_over_http_checks_roles_and_answers_problems(served: Served) -> None:
    engine, client, auth = served
    case = complaint(engine)
    clerk = client.post(f"/instances/{case}/erasure", json=WHY, headers=auth["clerk"])
    assert (clerk.status_code, clerk.headers["content-type"]) == (403, PROBLEM)
    assert not is_erased(engine, case)
    unknown = client.post("/instances/nope/erasure", json=WHY, headers=auth["head"])
    assert (unknown.status_code, unknown.headers["content-type"]) == (404, PROBLEM)
    empty = client.post(
        f"/instances/{case}/erasure", json={**WHY, "reason": ""}, headers=auth["head"]
    )
    assert (empty.status_code, empty.headers["content-type"]) == (422, PROBLEM)
    done = client.post(f"/instances/{case}/erasure", json=WHY, headers=auth["head"])
    assert done.status_code == 200, done.text
    assert done.json()["fields"] == ["complainant", "story"]
    assert is_erased(engine, case)
    assert engine.history(case)[-1].actor == "head-actor"
    again = client.post(f"/instances/{case}/erasure", json=WHY, headers=auth["admin"])
    assert (again.status_code, again.headers["content-type"]) == (409, PROBLEM)
    assert again.json()["kind"] == "erased"


def test_subject_export_and_erasure_over_http_are_admin_only_and_logged(served: Served) -> None:
    engine, client, auth = served
    case = complaint(engine, "Rui Matos")
    subject = {"subject": "rui  MATOS"}
    refused = client.post("/subjects/export", json=subject, headers=auth["head"])
    assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)
    exported = client.post(
        "/subjects/export", json=subject, headers={**auth["admin"], "Read-Reason": "request 9"}
    )
    assert exported.status_code == 200, exported.text
    [found] = exported.json()["cases"]
    assert found["instance"]["data"]["complainant"] == "Rui Matos"
    [entry] = [e for e in read_log(engine) if e.what == "subject-export"]
    assert (entry.actor, entry.channel, entry.instance_id) == ("admin-actor", "http", case)
    assert entry.reason == "request 9"
    assert (
        client.post("/subjects/erasure", json={**subject, **WHY}, headers=auth["head"]).status_code
        == 403
    )
    erased = client.post("/subjects/erasure", json={**subject, **WHY}, headers=auth["admin"])
    assert erased.status_code == 200, erased.text
    assert [e["instance_id"] for e in erased.json()["erased"]] == [case]
    assert is_erased(engine, case)
