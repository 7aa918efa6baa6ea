"""The HTTP API over a real server: resources, ETags and If-Match, Idempotency-Key, problem
details, limits, pagination; the OpenAPI document kept in docs/."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from batchhold import Hold, wait_for
from http_server import ApiUnderTest, api_fixture, live_server_fixture  # noqa: F401

from opcatflow.adapters.http import ApiConfig
from opcatflow.adapters.http.app import openapi_document
from opcatflow.adapters.http.problems import engine_error_body
from opcatflow.engine import (
    ConcurrentUpdate,
    DefinitionError,
    InstanceNotFound,
    InvalidData,
    KeyUnavailable,
    OpcatflowError,
    Problem,
    SchemaMismatch,
    StoreError,
    TransitionRefused,
    WorkflowNotFound,
)
from opcatflow.engine.audit import APPLIED, REFUSED
from opcatflow.engine.sql.tables import SCHEMA_REVISION

OPENAPI = Path(__file__).parent.parent / "docs" / "openapi.json"
PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["type"], body["status"]) == (f"urn:opcatflow:problem:{code}", status)
    assert "Traceback" not in response.text
    return body


def changes(engine: Any, instance_id: str) -> list[Any]:
    """The records of starts and triggers (not those of the obligations they changed)."""
    return [r for r in engine.history(instance_id) if r.outcome in ("started", APPLIED, REFUSED)]


# -- the document ------------------------------------------------------------------------------


@pytest.mark.skipif(not OPENAPI.exists(), reason="outside a checkout (the wheel test)")
def test_the_openapi_document_in_docs_is_current() -> None:
    # regenerate with: opcatflow serve --openapi docs/openapi.json
    assert json.loads(OPENAPI.read_text()) == openapi_document()


def test_the_server_serves_its_openapi_document(api: ApiUnderTest) -> None:
    served = api.get("/openapi.json", None).json()
    assert served == openapi_document()


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (TransitionRefused("i", "t", "guard", "no"), 409, "refused"),
        (TransitionRefused("i", "t", "state", "no"), 409, "refused"),
        (TransitionRefused("i", "t", "data", "no"), 422, "refused"),
        (TransitionRefused("i", "t", "trigger", "no"), 422, "refused"),
        (TransitionRefused("i", "t", "role", "no"), 403, "forbidden"),
        (InvalidData("w", ["x: required"]), 422, "invalid-data"),
        (ConcurrentUpdate("i", 1, 2), 412, "conflict"),
        (InstanceNotFound("i"), 404, "not-found"),
        (WorkflowNotFound("w"), 404, "not-found"),
        (DefinitionError([Problem("f", 1, 1, "bad")]), 500, "invalid-definition"),
        (SchemaMismatch("0000", "0001"), 503, "schema-mismatch"),
        (StoreError("database error"), 503, "store-error"),
        (KeyUnavailable("kek-1", "not in key file /k", "restore it"), 503, "key-unavailable"),
    ],
)
def test_each_engine_error_has_one_stable_problem_type(
    error: OpcatflowError, status: int, code: str
) -> None:
    body = engine_error_body(error)
    assert (body["type"], body["status"]) == (f"urn:opcatflow:problem:{code}", status)


# -- workflows ------------------------------------------------------------------------------------


def test_workflows_list_and_definition(api: ApiUnderTest) -> None:
    listed = api.get("/workflows", "observer").json()
    assert [(w["id"], w["start_roles"], w["personal_fields"]) for w in listed] == [
        ("casefile", ["clerk"], ["health", "name"]),
        ("permit", ["warden"], []),
    ]
    definition = api.get("/workflows/casefile", "observer").json()
    assert definition["fields"]["name"]["visible_to"] == ["clerk", "reviewer"]
    assert definition["personal_visible_to"] == ["reviewer"]


def test_the_data_schema_says_what_a_start_may_carry(api: ApiUnderTest) -> None:
    schema = api.get("/workflows/casefile/schema", "clerk").json()
    assert schema["required"] == ["title"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["name"]["x-personal"] is True
    assert schema["properties"]["tags"]["anyOf"][0] == {
        "type": "array",
        "items": {"type": "string"},
    }


def test_diagrams_in_mermaid_and_dot(api: ApiUnderTest) -> None:
    mermaid = api.get("/workflows/casefile/diagram", "clerk")
    assert mermaid.headers["content-type"].startswith("text/plain")
    assert mermaid.text.startswith("---") or "stateDiagram-v2" in mermaid.text
    dot = api.get("/workflows/casefile/diagram?format=dot", "clerk")
    assert dot.text.startswith("digraph")


def test_the_definition_format_schema_is_served(api: ApiUnderTest) -> None:
    schema = api.get("/schema/definition", "clerk").json()
    assert "transitions" in schema["properties"]


def test_an_unknown_workflow_is_a_not_found_problem_with_a_suggestion(api: ApiUnderTest) -> None:
    body = problem(api.get("/workflows/casefiel", "clerk"), 404, "not-found")
    assert "did you mean 'casefile'" in body["detail"]


# -- instances ----------------------------------------------------------------------------------


def test_start_answers_201_with_location_and_etag(api: ApiUnderTest) -> None:
    response = api.post(
        "/instances", "clerk", json={"workflow": "casefile", "data": {"title": "X"}}
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"{api.url}/instances/{body['id']}"
    assert body.pop("notices") == []  # what a start has to tell (nothing overdue here)
    assert api.client.get(response.headers["location"], headers=api.auth("clerk")).json() == body


def test_a_child_is_started_under_a_parent_the_key_may_read(api: ApiUnderTest) -> None:
    parent = api.start()
    child = api.post(
        "/instances",
        "clerk",
        json={"workflow": "casefile", "data": {"title": "c"}, "parent_id": parent["id"]},
    )
    assert child.json()["parent_id"] == parent["id"]
    listed = api.get(f"/instances?parent_id={parent['id']}", "clerk").json()["items"]
    assert [i["id"] for i in listed] == [child.json()["id"]]
    permit = api.engine.start("permit", actor="t", role="warden")
    problem(
        api.post(
            "/instances",
            "clerk",
            json={"workflow": "casefile", "data": {"title": "c"}, "parent_id": permit.id},
        ),
        403,
        "forbidden",
    )


def test_invalid_data_is_a_422_problem_listing_every_error(api: ApiUnderTest) -> None:
    response = api.post(
        "/instances", "clerk", json={"workflow": "casefile", "data": {"score": "high", "titel": 1}}
    )
    body = problem(response, 422, "invalid-data")
    assert body["errors"] == [
        "score: expected an integer",
        "unknown field 'titel' (did you mean 'title'?)",
        "title: required",
    ]
    assert api.engine.query() == []


def test_refusals_are_audited_then_answered_as_refused_problems(api: ApiUnderTest) -> None:
    for trigger, who, status, kind in [
        ("close", "reviewer", 409, "guard"),  # score >= 5 is not met
        ("submit", "clerk", 409, "state"),  # already submitted
        ("sumbit", "clerk", 422, "trigger"),  # no such trigger
    ]:
        case = api.start(score=2)
        api.fire(case["id"], "submit", "clerk")
        body = problem(api.fire(case["id"], trigger, who), status, "refused")
        assert (body["kind"], body["trigger"]) == (kind, trigger)
        assert body["detail"]
        assert api.engine.history(case["id"])[-1].outcome == REFUSED


def test_data_refused_by_a_transition_is_a_422(api: ApiUnderTest) -> None:
    case = api.start()
    body = problem(api.fire(case["id"], "submit", "clerk"), 422, "refused")
    assert body["kind"] == "data"
    assert "score" in body["detail"]


def test_an_unknown_instance_is_a_not_found_problem(api: ApiUnderTest) -> None:
    problem(api.get("/instances/nope", "clerk"), 404, "not-found")
    problem(api.fire("nope", "edit", "clerk"), 404, "not-found")


def test_pages_follow_the_cursor_to_the_end(api: ApiUnderTest) -> None:
    started = []
    for i in range(7):
        started.append(api.start(title=f"case {i}")["id"])
        api.clock.advance(timedelta(seconds=1))  # oldest first: the order they were started
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"workflow": "casefile", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/instances", "observer", params=params).json()
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == started
    assert pages == 3


def test_pages_skip_what_the_key_may_not_read(api: ApiUnderTest) -> None:
    for i in range(4):
        api.engine.start("permit", actor="t", role="warden")
        api.start(title=f"case {i}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/instances", "clerk", params=params).json()
        seen += [i["workflow_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["casefile"] * 4


def test_list_filters_by_state_and_data(api: ApiUnderTest) -> None:
    urgent = api.start(score=7, tags=["x"])
    api.start(score=1)
    api.fire(urgent["id"], "submit", "clerk")
    by_state = api.get("/instances", "clerk", params={"state": "review"}).json()["items"]
    where = {"workflow": "casefile", "where": "score=7"}
    by_score = api.get("/instances", "clerk", params=where).json()["items"]
    assert [i["id"] for i in by_state] == [i["id"] for i in by_score] == [urgent["id"]]
    by_text = {"workflow": "casefile", "where": ["title=5", "score=7"]}  # compared as text
    assert api.get("/instances", "clerk", params=by_text).json()["items"] == []
    by_tag = {"workflow": "casefile", "where": "tags=x"}  # a list matches what it holds
    assert [i["id"] for i in api.get("/instances", "clerk", params=by_tag).json()["items"]] == [
        urgent["id"]
    ]


def test_filters_are_typed_by_the_workflows_fields(api: ApiUnderTest) -> None:
    for params, detail in [
        ({"where": "score=7"}, "where needs workflow=ID"),
        ({"workflow": "casefile", "where": "score"}, "expected where=FIELD=VALUE"),
        ({"workflow": "casefile", "where": "scroe=7"}, "did you mean 'score'"),
        ({"workflow": "casefile", "where": "score=high"}, "integer field"),
        ({"workflow": "casefile", "where": "score=99999999999999999999"}, "integer field"),
    ]:
        body = problem(api.get("/instances", "clerk", params=params), 422, "invalid-request")
        assert detail in body["detail"]


def test_nul_never_reaches_the_database(api: ApiUnderTest) -> None:
    case = api.start()
    problem(api.get("/instances/a%00b", "clerk"), 400, "malformed-request")
    problem(api.get("/instances?state=a%00", "clerk"), 400, "malformed-request")
    for body in [
        {"trigger": "edit", "reason": "a\x00b"},
        {"trigger": "edit", "data": {"ti\x00tle": "x"}},
        {"trigger": "edit", "data": {"tags": ["\x00"]}},
        {"trigger": "ed\x00it"},
    ]:
        sent = api.post(f"/instances/{case['id']}/transitions", "clerk", json=body)
        problem(sent, 422, "invalid-request")
    assert len(changes(api.engine, case["id"])) == 1


def test_a_cursor_not_given_out_by_the_api_is_a_400(api: ApiUnderTest) -> None:
    problem(api.get("/instances", "clerk", params={"cursor": "!!"}), 400, "malformed-request")


# -- ETag and If-Match --------------------------------------------------------------------------


def test_every_instance_response_carries_its_version_as_etag(api: ApiUnderTest) -> None:
    case = api.start()
    assert api.get(f"/instances/{case['id']}", "clerk").headers["etag"] == '"1"'
    fired = api.fire(case["id"], "edit", "clerk", headers={"If-Match": '"1"'})
    assert (fired.status_code, fired.headers["etag"], fired.json()["version"]) == (200, '"2"', 2)


def test_a_stale_if_match_is_a_412_and_stores_nothing(api: ApiUnderTest) -> None:
    case = api.start()
    api.fire(case["id"], "edit", "reviewer")
    stale = api.fire(
        case["id"], "submit", "clerk", body={"data": {"score": 3}}, headers={"If-Match": '"1"'}
    )
    body = problem(stale, 412, "conflict")
    assert (body["current_version"], body["expected_version"]) == (2, 1)
    assert api.engine.get(case["id"]).state == "open"
    assert len(changes(api.engine, case["id"])) == 2


def test_if_match_compares_strong_tags(api: ApiUnderTest) -> None:
    found = {}
    for if_match in ['"2"', "*", '"1", "2"', 'W/"2"', '"7"', '"x"', "2"]:
        case = api.start()
        api.fire(case["id"], "edit", "clerk")
        found[if_match] = api.fire(case["id"], "edit", "clerk", headers={"If-Match": if_match})
    assert {k: r.status_code for k, r in found.items()} == {
        '"2"': 200,
        "*": 200,
        '"1", "2"': 200,
        'W/"2"': 412,  # a weak tag never matches (RFC 9110 13.1.1)
        '"7"': 412,
        '"x"': 412,
        "2": 400,  # not an entity tag
    }


# -- Idempotency-Key ----------------------------------------------------------------------------


def test_a_retried_start_returns_the_first_instance(api: ApiUnderTest) -> None:
    body = {"workflow": "casefile", "data": {"title": "once"}}
    headers = {"Idempotency-Key": "start-1"}
    first = api.post("/instances", "clerk", json=body, headers=headers)
    again = api.post("/instances", "clerk", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(api.engine.query()) == 1


def test_a_retried_transition_fires_once(api: ApiUnderTest) -> None:
    case = api.start()
    headers = {"Idempotency-Key": '"edit-1"', "If-Match": '"1"'}
    first = api.fire(case["id"], "edit", "clerk", body={"data": {"score": 4}}, headers=headers)
    again = api.fire(case["id"], "edit", "clerk", body={"data": {"score": 4}}, headers=headers)
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert api.engine.get(case["id"]).version == 2
    assert [r.outcome for r in changes(api.engine, case["id"])] == ["started", APPLIED]


def test_a_retried_refusal_is_answered_again_without_a_second_audit_record(
    api: ApiUnderTest,
) -> None:
    case = api.start()
    headers = {"Idempotency-Key": "submit-1"}
    first = api.fire(case["id"], "submit", "clerk", headers=headers)
    again = api.fire(case["id"], "submit", "clerk", headers=headers)
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.headers["content-type"] == PROBLEM
    assert again.json() == first.json()
    assert [r.outcome for r in changes(api.engine, case["id"])] == ["started", REFUSED]


def test_a_key_reused_for_another_request_is_refused(api: ApiUnderTest) -> None:
    case = api.start()
    headers = {"Idempotency-Key": "k"}
    api.fire(case["id"], "edit", "clerk", body={"data": {"score": 1}}, headers=headers)
    other = api.fire(case["id"], "edit", "clerk", body={"data": {"score": 2}}, headers=headers)
    problem(other, 422, "idempotency-key-reused")
    assert api.engine.get(case["id"]).data["score"] == 1


def test_idempotency_keys_belong_to_one_api_key(api: ApiUnderTest) -> None:
    case = api.start()
    headers = {"Idempotency-Key": "shared"}
    api.fire(case["id"], "edit", "clerk", headers=headers)
    api.fire(case["id"], "edit", "reviewer", headers=headers)
    assert api.engine.get(case["id"]).version == 3


def test_after_the_retention_period_the_key_acts_again_and_old_records_are_purged(
    api: ApiUnderTest,
) -> None:
    case = api.start()
    headers = {"Idempotency-Key": "late"}
    api.fire(case["id"], "edit", "clerk", headers=headers)
    api.clock.advance(timedelta(hours=23))
    api.fire(case["id"], "edit", "clerk", headers=headers)
    assert api.engine.get(case["id"]).version == 2
    api.clock.advance(timedelta(hours=2))
    api.fire(case["id"], "edit", "clerk", headers=headers)
    assert api.engine.get(case["id"]).version == 3
    records = api.client  # the server's own records, through its app state
    assert records is not None
    from opcatflow.adapters.http.idempotency import IdempotencyRecords

    purge = IdempotencyRecords(api.engine.store, api.clock, timedelta(hours=24))
    api.clock.advance(timedelta(hours=25))
    assert purge.purge() == 1


def test_concurrent_copies_of_a_keyed_request_act_once(api: ApiUnderTest) -> None:
    case = api.start()
    barrier = threading.Barrier(4)
    results: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            barrier.wait()
            results.append(
                client.post(
                    f"/instances/{case['id']}/transitions",
                    json={"trigger": "edit", "data": {"score": 9}},
                    headers={**api.auth("clerk"), "Idempotency-Key": "race", "If-Match": '"1"'},
                )
            )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200] * 4
    assert len({r.text for r in results}) == 1
    assert api.engine.get(case["id"]).version == 2
    assert len(changes(api.engine, case["id"])) == 2


def test_keyed_fires_wait_for_their_commit_without_holding_a_thread(api: ApiUnderTest) -> None:
    # The API has 8 threads: more keyed fires than that queue for one commit all the same.
    cases = [api.start()["id"] for _ in range(13)]
    group = api.engine.store.group  # type: ignore[attr-defined]
    hold = Hold()
    pool = ThreadPoolExecutor(13)
    held = pool.submit(api.engine.fire, cases[0], "edit", actor="w", role="clerk", also=hold)
    wait_for(hold.entered.is_set, "a batch is held open")

    def send(case_id: str) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            return client.post(
                f"/instances/{case_id}/transitions",
                json={"trigger": "edit", "data": {"score": 9}},
                headers={**api.auth("clerk"), "Idempotency-Key": f"k-{case_id}"},
            )

    sent = [pool.submit(send, case_id) for case_id in cases[1:]]
    wait_for(lambda: group.queued() == 12, "12 keyed fires are queued behind it")
    hold.release.set()
    assert held.result(20).version == 2
    assert [f.result(20).status_code for f in sent] == [200] * 12
    assert group.stats().largest >= 12
    pool.shutdown()


def test_a_malformed_idempotency_key_is_a_400(api: ApiUnderTest) -> None:
    for key in ["", "a b", "x" * 256, "é"]:
        response = api.post(
            "/instances",
            "clerk",
            json={"workflow": "casefile", "data": {"title": "x"}},
            headers={"Idempotency-Key": key.encode()},
        )
        problem(response, 400, "malformed-request")
    assert api.engine.query() == []


# -- malformed requests and limits ----------------------------------------------------------


def test_malformed_json_is_a_400_never_a_500(api: ApiUnderTest) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000  # deeper than any parser's recursion limit
    cases = [
        (b"{", 400, "malformed-request"),
        (b'{"workflow": "casefile",}', 400, "malformed-request"),
    ]
    cases += [(b"nul\x00", 400, "malformed-request"), (b"\xff\xfe", 400, "malformed-request")]
    cases += [(deep, 422, "limit-exceeded")]  # see docs/limits.md
    for content, status, code in cases:
        response = api.post(
            "/instances", "clerk", content=content, headers={"content-type": "application/json"}
        )
        problem(response, status, code)


def test_a_body_of_the_wrong_shape_is_a_422_naming_the_field(api: ApiUnderTest) -> None:
    response = api.post("/instances", "clerk", json={"workflow": 3, "extra": True})
    body = problem(response, 422, "invalid-request")
    assert {e["location"] for e in body["errors"]} == {"body.workflow", "body.extra"}


@pytest.mark.parametrize("api", [ApiConfig(max_body=2048)], indirect=True)
def test_a_body_over_the_limit_is_a_413(api: ApiUnderTest) -> None:
    big = {"workflow": "casefile", "data": {"title": "x" * 4096}}
    problem(api.post("/instances", "clerk", json=big), 413, "payload-too-large")

    def chunks() -> Any:  # no Content-Length: the limit is counted as the body streams
        yield b'{"workflow": "casefile", "data": {"title": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    streamed = api.post(
        "/instances", "clerk", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(streamed, 413, "payload-too-large")
    assert api.engine.query() == []


def test_unknown_paths_and_methods_are_problems(api: ApiUnderTest) -> None:
    problem(api.get("/nothing", "clerk"), 404, "not-found")
    problem(api.client.delete("/instances", headers=api.auth("clerk")), 405, "method-not-allowed")


def test_an_unexpected_error_is_a_bare_500_without_a_trace(
    api: ApiUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(instance_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.engine, "get", broken)
    response = api.get("/instances/x", "clerk")
    body = problem(response, 500, "internal-error")
    assert "secret" not in response.text
    assert set(body) == {"type", "title", "status"}


def test_a_database_failure_is_a_503_store_error(
    api: ApiUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opcatflow.engine.errors import StoreError

    case = api.start()

    def broken(*args: Any, **kw: Any) -> None:
        raise StoreError("database error: OperationalError('disk I/O error')")

    def broken_soon(*args: Any, **kw: Any) -> Future[None]:
        failed: Future[None] = Future()
        failed.set_exception(StoreError("database error: OperationalError('disk I/O error')"))
        return failed

    # both ways a fire reaches the store: waiting in a thread, or queued from the loop
    monkeypatch.setattr(api.engine.store, "submit", broken)
    monkeypatch.setattr(api.engine.store, "submit_soon", broken_soon)
    body = problem(api.fire(case["id"], "edit", "clerk"), 503, "store-error")
    assert "disk" not in body["detail"]
    keyed = api.fire(case["id"], "edit", "clerk", headers={"Idempotency-Key": "k-1"})
    assert "disk" not in problem(keyed, 503, "store-error")["detail"]


# -- health and operations ----------------------------------------------------------------------


def test_ready_names_the_schema_revision(api: ApiUnderTest) -> None:
    assert api.get("/ready", None).json() == {
        "status": "ready",
        "schema_revision": SCHEMA_REVISION,
    }


def test_responses_are_not_cached(api: ApiUnderTest) -> None:
    assert api.get("/workflows", "clerk").headers["cache-control"] == "no-store"


def test_audit_verify_and_export_for_admin(api: ApiUnderTest) -> None:
    case = api.start()
    api.fire(case["id"], "edit", "clerk")
    verified = api.get("/audit/verify", "admin").json()
    # the start, the edit, and the record of the obligation the start armed
    assert (verified["ok"], verified["records"], verified["first_break"]) == (True, 3, None)
    assert verified["warnings"] == []
    export = api.get("/audit/export", "admin", params={"instance_id": case["id"]})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3]


def test_outbox_status_counts_by_status(api: ApiUnderTest) -> None:
    body = api.get("/outbox", "admin").json()
    assert body["counts"] == {"pending": 0, "sending": 0, "sent": 0, "failed": 0, "dead": 0}
    problem(api.get("/outbox?status=lost", "admin"), 422, "invalid-request")
