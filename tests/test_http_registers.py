"""Registers over the HTTP API: an entry started with a chosen id, and a reference shown as
{id, title} in a view and in a list. On both backends."""

from __future__ import annotations

from http_server import BundledApi, bundled_api_fixture, live_server_fixture  # noqa: F401


def test_an_entry_with_a_chosen_id_and_a_reference_shown_by_its_title(
    bundled_api: BundledApi,
) -> None:
    api = bundled_api
    moj = {"workflow": "authority", "id": "moj", "data": {"name": "Ministry of Justice"}}
    response = api.client.post("/instances", json=moj, headers=api.auth("coordinator"))
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "moj"
    again = api.client.post("/instances", json=moj, headers=api.auth("coordinator"))
    assert again.status_code == 422, again.text  # a refusal of its data, as problem+json
    assert again.headers["content-type"] == "application/problem+json"
    assert "authority 'moj' exists already" in again.text
    place = {
        "workflow": "place",
        "id": "p-1",
        "data": {"name": "Central Prison", "place_type": "prison", "authority": "moj"},
    }
    response = api.client.post("/instances", json=place, headers=api.auth("coordinator"))
    assert response.status_code == 201, response.text
    shown = api.client.get("/instances/p-1", headers=api.auth("member")).json()
    assert shown["data"]["authority"] == {"id": "moj", "title": "Ministry of Justice"}
    listed = api.client.get(
        "/instances", params={"workflow": "place", "where": "authority=moj"},
        headers=api.auth("member"),
    ).json()  # fmt: skip
    assert [i["data"]["authority"]["title"] for i in listed["items"]] == ["Ministry of Justice"]
    bad = {**place, "id": "P 2"}
    assert (
        api.client.post("/instances", json=bad, headers=api.auth("coordinator")).status_code == 422
    )
