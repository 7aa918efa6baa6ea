"""The HTTP instance list: keyset pages with next_cursor, and filters and parameters that
must name something that exists (422 problem+json with a did-you-mean). Ids in paths are
full ids: a prefix is a 404 (one canonical URL per instance)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from http_server import (  # noqa: F401
    ApiUnderTest,
    BundledApi,
    api_fixture,
    bundled_api_fixture,
    live_server_fixture,
)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_pages_neither_skip_nor_repeat_while_instances_are_started(api: ApiUnderTest) -> None:
    ids = []
    for i in range(4):
        ids.append(api.start(title=f"case {i}")["id"])
        api.clock.advance(timedelta(seconds=1))
    first = api.get("/instances", "observer", params={"limit": 3}).json()
    assert [i["id"] for i in first["items"]] == ids[:3]
    late = api.start(title="started between pages")["id"]
    rest = api.get("/instances", "observer", params={"cursor": first["next_cursor"]}).json()
    assert [i["id"] for i in rest["items"]] == [ids[3], late]
    assert rest["next_cursor"] is None


TYPOS = [
    ({"state": "opne"}, "state", "has no state 'opne' (did you mean 'open'?)"),
    (
        {"workflow": "casefile", "state": "reveiw"},
        "state",
        "workflow 'casefile' has no state 'reveiw' (did you mean 'review'?)",
    ),
    ({"workflow": "casfile"}, "workflow", "no workflow 'casfile' (did you mean 'casefile'?)"),
    (
        {"workflow": "casefile", "where": "scor=3"},
        "where",
        "unknown field 'scor' (did you mean 'score'?)",
    ),
    ({"workflow": "casefile", "where": "score=high"}, "where", "score is an integer field"),
    ({"stat": "open"}, "parameter", "unknown parameter 'stat' (did you mean 'state'?"),
]


def test_a_filter_or_parameter_naming_nothing_is_a_422(api: ApiUnderTest) -> None:
    for params, parameter, message in TYPOS:
        body = problem(api.get("/instances", "observer", params=params), 422)
        assert body["type"] == "urn:opcatflow:problem:invalid-request"
        assert body["parameter"] == parameter
        assert message in body["detail"]
    instance_id = api.start()["id"]
    for path in ("", "/triggers", "/history"):  # the routes of one instance too
        body = problem(api.get(f"/instances/{instance_id}{path}", "clerk", params={"x": 1}), 422)
        assert "unknown parameter 'x'" in body["detail"]
    # the clerk key reads casefile only: a typo of permit is not answered with its name
    body = problem(api.get("/instances", "clerk", params={"workflow": "permt"}), 422)
    assert "permit" not in body["detail"]
    problem(api.get("/instances", "clerk", params={"workflow": "permit"}), 403)
    # a path takes the full id only: one URL per instance
    assert api.get(f"/instances/{instance_id}", "clerk").status_code == 200
    problem(api.get(f"/instances/{instance_id[:8]}", "clerk"), 404)


def test_an_enum_value_that_does_not_exist_is_a_422(bundled_api: BundledApi) -> None:
    params = {"workflow": "complaint", "where": "channel=emial"}
    response = bundled_api.client.get(
        "/instances", params=params, headers=bundled_api.auth("intake")
    )
    body = problem(response, 422)
    assert "not 'emial' (did you mean 'email'?)" in body["detail"]
