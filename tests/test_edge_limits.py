"""The limits and valid Unicode at the edges: the CLI exits 2 with one line naming the limit,
the HTTP API answers 422 (413 for size) with a problem naming it; nothing is stored, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import changes
from http_server import ApiUnderTest, api_fixture, live_server_fixture  # noqa: F401
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.adapters.http import ApiConfig
from opcatflow.engine import Engine
from opcatflow.workflows import BUNDLED, registry

COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-01",
    "summary": "Beaten in cell 14.",
}
INTAKE = ["--actor", "m.okafor", "--role", "intake"]
CLEAN_ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None}
PROBLEM = "application/problem+json"


# -- the command line ----------------------------------------------------------------------


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", db_url, *args], env=CLEAN_ENV)


def refused(result: Result, *words: str) -> None:
    """Exit 2, one line on standard error saying each of ``words``."""
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    for word in words:
        assert word in line


def versions(db_url: str) -> list[int]:
    with Engine.open(db_url, [BUNDLED], registry, create=False) as engine:
        return [i.version for i in engine.query()]


def test_cli_inputs_past_a_limit_exit_2_and_store_nothing(db_url: str, tmp_path: Path) -> None:
    start = ["start", "complaint", *INTAKE, "-q"]
    refused(run(db_url, *start[:2], "--actor", "a" * 201, "--role", "intake"), "actor limit")
    refused(run(db_url, *start, "--data", '{"summary": "Ana \\ud800"}'), "data.summary", "Unicode")
    started = run(db_url, *start, "--data", json.dumps(COMPLAINT))
    assert started.exit_code == 0, started.output
    instance_id = started.stdout.strip()
    fire = ["fire", instance_id, "record", *INTAKE]
    refused(run(db_url, *fire, "--set", "referral_body=" + "x" * 1_001), "string field limit")
    refused(run(db_url, *fire, "--data", "[" * 100_000), "JSON nesting limit")
    # bytes that were not UTF-8 reach Python as lone surrogates (surrogateescape)
    refused(run(db_url, *fire, "--reason", "caf\udce9"), "argument", "not valid Unicode")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"theme": "caf\xe9"}')
    refused(run(db_url, *fire, "--data", f"@{latin1}"), "not valid UTF-8")
    assert versions(db_url) == [1]
    key = ["apikey", "create", "--role", "intake"]
    refused(run(db_url, *key, "--actor", "a" * 201), "actor limit: at most 200 characters")
    refused(run(db_url, *key, "--actor", "a", "--note", "caf\udce9"), "not valid Unicode")


def test_the_console_script_refuses_argv_that_is_not_utf8() -> None:
    command = [sys.executable.encode(), b"-m", b"opcatflow.adapters.cli", b"validate", b"caf\xe9"]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 2
    [line] = done.stderr.decode().splitlines()
    assert line == (
        "error: argument 2 is not valid Unicode text (a lone surrogate or bytes that were "
        "not UTF-8 at character 3)"
    )


def test_validate_locates_yaml_nested_too_deep(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("id: " + "[" * 50_000 + "]" * 50_000)
    result = CliRunner().invoke(app, ["validate", str(path)], env=CLEAN_ENV)
    assert result.exit_code == 6, result.output
    assert result.stdout.splitlines() == [
        f"{path}:1:68: collections nested too deep: over the YAML nesting limit: at most 64 levels"
    ]


# -- the HTTP API --------------------------------------------------------------------------


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["type"], body["status"]) == (f"urn:opcatflow:problem:{code}", status)
    return body


def raw(api: ApiUnderTest, path: str, body: bytes) -> httpx.Response:
    """POST bytes as they are (httpx would not encode a lone surrogate)."""
    headers = {"content-type": "application/json"}
    return api.post(path, "clerk", content=body, headers=headers)


def test_http_lone_surrogates_and_bytes_that_are_not_utf8_are_422(api: ApiUnderTest) -> None:
    bad_value = b'{"workflow": "casefile", "data": {"title": "Ana \\ud800"}}'
    body = problem(raw(api, "/instances", bad_value), 422, "invalid-text")
    assert body["location"] == "data.title"
    assert "not valid Unicode" in body["detail"]
    not_utf8 = b'{"workflow": "casefile", "data": {"title": "caf\xe9"}}'
    assert problem(raw(api, "/instances", not_utf8), 422, "invalid-text")["location"] == "body"
    assert api.engine.query() == []  # and the connection is still up:
    instance = api.start()
    path = f"/instances/{instance['id']}/transitions"
    bad_key = b'{"trigger": "edit", "data": {"\\udc80": 1}}'
    assert problem(raw(api, path, bad_key), 422, "invalid-text")["location"] == "data (a key)"
    bad_reason = b'{"trigger": "edit", "reason": "\\udfff"}'
    assert problem(raw(api, path, bad_reason), 422, "invalid-text")["location"] == "reason"
    assert api.engine.get(instance["id"]).version == 1
    assert len(changes(api.engine, instance["id"])) == 1


def test_http_inputs_past_a_limit_are_422_naming_the_limit(api: ApiUnderTest) -> None:
    instance = api.start()
    body = {"data": {"title": "x" * 1_001}}
    found = problem(api.fire(instance["id"], "edit", "clerk", body=body), 422, "limit-exceeded")
    assert (found["limit"], found["maximum"], found["location"]) == (
        "string field",
        1_000,
        "data.title",
    )
    body = {"data": {"tags": ["a"] * 1_001}}
    found = problem(api.fire(instance["id"], "edit", "clerk", body=body), 422, "limit-exceeded")
    assert (found["limit"], found["maximum"]) == ("list", 1_000)
    body = {"data": {"tags": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}
    found = problem(api.fire(instance["id"], "edit", "clerk", body=body), 422, "limit-exceeded")
    assert (found["limit"], found["maximum"]) == ("JSON nesting", 32)
    body = {"reason": "r" * 2_001}
    found = problem(api.fire(instance["id"], "edit", "clerk", body=body), 422, "limit-exceeded")
    assert (found["limit"], found["maximum"], found["location"]) == ("reason", 2_000, "reason")
    assert api.engine.get(instance["id"]).version == 1


@pytest.mark.parametrize("api", [ApiConfig(max_body=4 * 1024 * 1024)], indirect=True)
def test_http_data_over_1_mib_is_a_413_naming_the_limit(api: ApiUnderTest) -> None:
    big = {"workflow": "casefile", "data": {"title": "t", "tags": ["é" * 1_000] * 1_000}}
    found = problem(api.post("/instances", "clerk", json=big), 413, "limit-exceeded")
    assert (found["limit"], found["maximum"], found["unit"]) == (
        "instance data",
        1024 * 1024,
        "bytes of JSON",
    )
    assert api.engine.query() == []


def test_http_a_body_nested_past_the_parser_is_422_naming_the_limit(api: ApiUnderTest) -> None:
    deep = b'{"workflow": "casefile", "data": {"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    found = problem(raw(api, "/instances", deep), 422, "limit-exceeded")
    assert (found["limit"], found["maximum"], found["location"]) == ("JSON nesting", 32, "body")
    assert api.engine.query() == []
