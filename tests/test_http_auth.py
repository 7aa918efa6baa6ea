"""Who may call what: every key (and no key, and a revoked one) against every endpoint, over
a real server; and what each role sees of personal data."""

from __future__ import annotations

import io
from typing import Any

import pytest
from helpers import CHANGE_OUTCOMES, changes
from http_server import ApiUnderTest, api_fixture, live_server_fixture  # noqa: F401

from opcatflow.adapters.http import ApiConfig, ApiKeys
from opcatflow.adapters.http.auth import KeyCache
from opcatflow.engine.audit import REFUSED

WHO = ["clerk", "reviewer", "observer", "warden", "admin", "multi", "revoked", None]
C = "<case>"  # stands for the casefile instance's id in the paths below
P = "<permit>"  # and this for the permit instance's

# (method, path, body) -> expected status for each of WHO, in order.
MATRIX: list[tuple[str, str, Any, list[int]]] = [
    ("GET", "/health", None, [200, 200, 200, 200, 200, 200, 200, 200]),
    ("GET", "/ready", None, [200, 200, 200, 200, 200, 200, 200, 200]),
    ("GET", "/workflows", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/workflows/casefile", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/workflows/casefile/schema", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/workflows/casefile/diagram", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/schema/definition", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/instances", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/instances?workflow=casefile", None, [200, 200, 200, 403, 200, 200, 401, 401]),
    ("GET", "/instances?workflow=permit", None, [403, 403, 403, 200, 200, 403, 401, 401]),
    ("GET", f"/instances/{C}", None, [200, 200, 200, 403, 200, 200, 401, 401]),
    ("GET", f"/instances/{P}", None, [403, 403, 403, 200, 200, 403, 401, 401]),
    ("GET", f"/instances/{C}/triggers", None, [200, 200, 200, 403, 200, 200, 401, 401]),
    ("GET", f"/instances/{C}/history", None, [200, 200, 200, 403, 200, 200, 401, 401]),
    (
        "POST",
        "/instances",
        {"workflow": "casefile", "data": {"title": "T"}},
        [201, 403, 403, 403, 403, 201, 401, 401],
    ),
    (
        "POST",
        "/instances",
        {"workflow": "permit"},
        [403, 403, 403, 201, 403, 403, 401, 401],
    ),
    (
        "POST",
        f"/instances/{C}/transitions",
        {"trigger": "edit", "data": {"score": 1}},
        [200, 200, 403, 403, 403, 200, 401, 401],
    ),
    (
        "POST",
        f"/instances/{P}/transitions",
        {"trigger": "grant"},
        [403, 403, 403, 200, 403, 403, 401, 401],
    ),
    ("GET", "/deadlines", None, [200, 200, 200, 200, 200, 200, 401, 401]),
    ("GET", "/outbox", None, [403, 403, 403, 403, 200, 403, 401, 401]),
    ("GET", "/audit/verify", None, [403, 403, 403, 403, 200, 403, 401, 401]),
    ("GET", "/audit/export", None, [403, 403, 403, 403, 200, 403, 401, 401]),
]


def test_every_key_against_every_endpoint(api: ApiUnderTest) -> None:
    found: dict[tuple[str, str], list[int]] = {}
    for method, template, body, _ in MATRIX:
        statuses = []
        for who in WHO:
            # a fresh instance each time, so a transition never meets a state it left
            case = api.engine.start("casefile", actor="t", role="clerk", data={"title": "T"})
            permit = api.engine.start("permit", actor="t", role="warden")
            path = template.replace(C, case.id).replace(P, permit.id)
            response = api.client.request(method, path, json=body, headers=api.auth(who))
            statuses.append(response.status_code)
            if response.status_code in (401, 403):
                assert response.headers["content-type"] == "application/problem+json"
                problem = response.json()
                expected = "unauthorized" if response.status_code == 401 else "forbidden"
                assert problem["type"] == f"urn:opcatflow:problem:{expected}"
                # nothing else revealed: no roles, no reasons, no ids
                assert set(problem) == {"type", "title", "status", "detail"}
        found[(method, template)] = statuses
    assert found == {(m, t): expected for m, t, _, expected in MATRIX}


def test_401_carries_a_bearer_challenge_and_the_same_answer_for_every_bad_key(
    api: ApiUnderTest,
) -> None:
    bad = [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer {api.tokens['clerk']}x"},
        {"Authorization": f"Bearer {api.tokens['revoked']}"},
        {"Authorization": f"Basic {api.tokens['clerk']}"},
    ]
    answers = [api.client.get("/workflows", headers=h) for h in bad]
    assert {r.status_code for r in answers} == {401}
    assert {r.headers["www-authenticate"] for r in answers} == {'Bearer realm="opcatflow"'}
    assert len({r.text for r in answers}) == 1


def test_a_key_revoked_while_the_server_runs_stops_working_within_the_cache_window(
    api: ApiUnderTest,
) -> None:
    now = [0.0]
    api.app.state.api.key_cache = KeyCache(2.0, now=lambda: now[0])
    assert api.get("/workflows", "clerk").status_code == 200
    ApiKeys(api.engine.store, api.clock).revoke(api.tokens["clerk"].split("_")[1])
    now[0] = 1.9
    assert api.get("/workflows", "clerk").status_code == 200  # trusted a little longer
    now[0] = 2.1
    assert api.get("/workflows", "clerk").status_code == 401


@pytest.mark.parametrize("api", [ApiConfig(key_cache_seconds=0)], indirect=True)
def test_without_the_cache_a_revoked_key_is_refused_at_once(api: ApiUnderTest) -> None:
    assert api.get("/workflows", "clerk").status_code == 200
    ApiKeys(api.engine.store, api.clock).revoke(api.tokens["clerk"].split("_")[1])
    assert api.get("/workflows", "clerk").status_code == 401


def test_a_role_the_engine_refuses_is_audited_as_a_refusal(api: ApiUnderTest) -> None:
    case = api.start()
    response = api.fire(case["id"], "submit", "observer", body={"data": {"score": 3}})
    assert response.status_code == 403
    last = api.engine.history(case["id"])[-1]
    assert (last.outcome, last.actor, last.role, last.trigger) == (
        REFUSED,
        "observer-actor",
        "observer",
        "submit",
    )
    assert api.engine.get(case["id"]).data.get("score") is None


def test_a_key_acts_as_its_actor_in_the_role_it_names(api: ApiUnderTest) -> None:
    case = api.start(who="multi")
    response = api.fire(case["id"], "edit", "multi", body={"role": "reviewer"})
    assert response.status_code == 200
    records = changes(api.engine, case["id"])
    assert [(r.actor, r.role) for r in records] == [
        ("multi-actor", "clerk"),
        ("multi-actor", "reviewer"),
    ]


def test_naming_a_role_the_key_does_not_hold_is_forbidden_and_stores_nothing(
    api: ApiUnderTest,
) -> None:
    case = api.start()
    response = api.fire(case["id"], "edit", "clerk", body={"role": "reviewer"})
    assert response.status_code == 403
    assert len(changes(api.engine, case["id"])) == 1


def test_a_key_with_several_roles_acts_in_one_the_engine_lists_for_the_trigger(
    api: ApiUnderTest,
) -> None:
    case = api.start(score=7)
    api.fire(case["id"], "submit", "clerk")
    response = api.fire(case["id"], "close", "multi")
    assert response.status_code == 200
    assert api.engine.history(case["id"])[-1].role == "reviewer"


def test_triggers_merge_what_each_of_the_keys_roles_may_fire(api: ApiUnderTest) -> None:
    case = api.start(score=2)
    api.fire(case["id"], "submit", "clerk")
    triggers = api.get(f"/instances/{case['id']}/triggers", "multi").json()
    assert [(t["trigger"], t["ready"], t["roles"]) for t in triggers] == [
        ("edit", True, ["clerk", "reviewer"]),
        ("close", False, ["reviewer"]),
        ("send_back", True, ["reviewer"]),
    ]
    assert triggers[1]["blocked_by"] == "condition 'score >= 5' is not met"
    assert api.get(f"/instances/{case['id']}/triggers", "observer").json() == []


# -- personal data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "name", "health", "withheld"),
    [
        ("clerk", "Ana Silva", "[withheld]", ["health"]),
        ("reviewer", "Ana Silva", "asthma", []),
        ("observer", "[withheld]", "[withheld]", ["health", "name"]),
        ("admin", "[withheld]", "[withheld]", ["health", "name"]),
        ("multi", "Ana Silva", "asthma", []),
    ],
)
def test_personal_fields_reach_only_the_roles_the_definition_names(
    api: ApiUnderTest, who: str, name: str, health: str, withheld: list[str]
) -> None:
    case = api.start(name="Ana Silva", score=1)
    assert api.fire(case["id"], "edit", "reviewer", body={"data": {"health": "asthma"}}).is_success
    body = api.get(f"/instances/{case['id']}", who).json()
    assert (body["data"]["name"], body["data"]["health"], body["withheld"]) == (
        name,
        health,
        withheld,
    )
    listed = api.get("/instances?workflow=casefile", who).json()["items"]
    assert [item["data"] for item in listed] == [body["data"]]


def test_a_withheld_field_is_withheld_even_when_it_holds_nothing(api: ApiUnderTest) -> None:
    case = api.start()
    body = api.get(f"/instances/{case['id']}", "observer").json()
    assert (body["data"]["name"], body["data"]["health"], body["withheld"]) == (
        "[withheld]",
        "[withheld]",
        ["health", "name"],
    )


def test_the_response_to_a_write_is_redacted_for_the_writer_too(api: ApiUnderTest) -> None:
    started = api.start(name="Ana Silva")
    api.fire(started["id"], "edit", "reviewer", body={"data": {"health": "asthma"}})
    fired = api.fire(started["id"], "edit", "clerk", body={"data": {"score": 3}})
    assert (fired.json()["data"]["name"], fired.json()["data"]["health"]) == (
        "Ana Silva",
        "[withheld]",
    )


def test_a_key_may_not_write_a_field_it_may_not_read(api: ApiUnderTest) -> None:
    case = api.start(name="Ana Silva")
    api.fire(case["id"], "edit", "reviewer", body={"data": {"health": "asthma"}})
    guess = api.fire(case["id"], "edit", "clerk", body={"data": {"health": "diabetes"}})
    assert (guess.status_code, guess.json()["kind"], guess.json()["detail"]) == (
        422,
        "data",
        "role 'clerk' may not write health (it may not read it)",
    )
    assert api.engine.get(case["id"]).data["health"] == "asthma"
    assert api.engine.get(case["id"]).version == 2
    refused = api.engine.history(case["id"])[-1]
    assert (refused.outcome, refused.actor) == (REFUSED, "clerk-actor")
    exported = io.StringIO()
    api.engine.export_audit(exported, case["id"])
    assert "diabetes" not in exported.getvalue()


def test_history_withholds_personal_hashes_and_reasons_from_who_may_not_read_them(
    api: ApiUnderTest,
) -> None:
    case = api.start(name="Ana Silva")
    api.fire(case["id"], "edit", "reviewer", body={"data": {"health": "asthma"}})
    api.fire(case["id"], "edit", "clerk", body={"data": {"score": 2}, "reason": "Ana asked"})
    # (the records of starts and triggers, not those of the obligation the start armed)
    observer = [r for r in api.get(f"/instances/{case['id']}/history", "observer").json()
                if r["outcome"] in CHANGE_OUTCOMES]  # fmt: skip
    reviewer = [r for r in api.get(f"/instances/{case['id']}/history", "reviewer").json()
                if r["outcome"] in CHANGE_OUTCOMES]  # fmt: skip
    assert observer[0]["changes"]["name"] == ["[withheld]", "[withheld]"]
    assert observer[2]["reason"] == "[withheld]"
    assert reviewer[0]["changes"]["name"][1].startswith("hmac-sha256:")
    assert reviewer[2]["reason"] == "Ana asked"
    assert "Ana Silva" not in str(reviewer)


def test_history_lists_every_withheld_field_in_every_change_whether_it_changed_or_not(
    api: ApiUnderTest,
) -> None:
    """Which records changed a field one may not read would tell whether a written guess
    equalled the stored value: every record that stores data lists it alike."""
    case = api.start(name="Ana Silva")
    api.fire(case["id"], "edit", "reviewer", body={"data": {"health": "asthma"}})
    api.fire(case["id"], "edit", "clerk", body={"data": {"score": 2}})
    api.fire(case["id"], "edit", "clerk", body={"data": {"health": "asthma"}})  # refused
    clerk = [r for r in api.get(f"/instances/{case['id']}/history", "clerk").json()
             if r["outcome"] in CHANGE_OUTCOMES]  # fmt: skip
    withheld = ["[withheld]", "[withheld]"]
    assert [r["changes"].get("health") for r in clerk] == [withheld, withheld, withheld, None]
    assert clerk[3]["outcome"] == REFUSED


def test_a_personal_field_cannot_be_a_filter(api: ApiUnderTest) -> None:
    api.start(name="Ana Silva")
    where = {"workflow": "casefile", "where": "name=Ana Silva"}
    refused = api.get("/instances", "observer", params=where)
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:opcatflow:problem:invalid-request"
    # a key that may read it cannot filter on it either: it is stored encrypted
    sealed = api.get("/instances", "clerk", params=where)
    assert sealed.status_code == 422
    assert "stored encrypted" in sealed.json()["detail"]
    plain = api.get("/instances", "clerk", params={"workflow": "casefile", "where": "title=A case"})
    assert len(plain.json()["items"]) == 1


def test_deadlines_list_those_the_keys_roles_act_on(api: ApiUnderTest) -> None:
    case = api.start()
    clerk = api.get("/deadlines", "clerk").json()["items"]
    assert [(d["instance_id"], d["deadline"]) for d in clerk] == [(case["id"], "review_by")]
    assert api.get("/deadlines", "warden").json()["items"] == []
    assert len(api.get("/deadlines?reminders=true", "admin").json()["items"]) == 2


def test_a_body_cannot_name_another_actor_the_key_is_the_actor(api: ApiUnderTest) -> None:
    case = api.start()
    forged = api.fire(case["id"], "edit", "clerk", body={"actor": "head-of-npm"})
    assert forged.status_code == 422
    assert api.fire(case["id"], "edit", "clerk").is_success
    assert [r.actor for r in changes(api.engine, case["id"])] == ["clerk-actor", "clerk-actor"]
