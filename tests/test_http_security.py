"""The API's edges against a hostile caller, over a real server: a forged ``Host`` is refused
and never reflected, absolute URLs use the public URL, failed authentications are logged
without their secret and limited per address (with an injected clock: no sleeping)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from helpers import make_registry
from http_server import DEFINITIONS, LiveServer, live_server_fixture  # noqa: F401
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opcatflow.adapters.cli import app as cli_app
from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.adapters.http.hosts import host_name, trusted
from opcatflow.adapters.http.throttle import FailureLimit
from opcatflow.engine import Engine, FrozenClock

PROBLEM = "application/problem+json"
CASE = {"workflow": "casefile", "data": {"title": "A case"}}


class Served:
    """One app over a test database, its keys, and the JSON log lines it wrote."""

    def __init__(self, engine: Engine, client: httpx.Client, tokens: dict[str, str]) -> None:
        self.engine = engine
        self.client = client
        self.tokens = tokens
        self.log = io.StringIO()
        self.limit: FailureLimit | None = None  # the app's, to move its clock

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.getvalue().splitlines()]
        return [line for line in lines if line["event"] == name]

    def instances(self) -> int:
        return len(self.engine.query(workflow="casefile"))


Serve = Callable[..., Served]


@pytest.fixture
def serve(live_server: LiveServer, db_url: str, clock: FrozenClock) -> Iterator[Serve]:
    """``serve(config)``: the API with that config on the live server, logging JSON lines."""
    opened: list[tuple[Engine, httpx.Client]] = []

    def start(config: ApiConfig | None = None) -> Served:
        engine = Engine.open(db_url, [DEFINITIONS], make_registry(), clock=clock)
        keys = ApiKeys(engine.store, clock)
        tokens = {"clerk": keys.create("clerk-actor", ["clerk"])[1]}
        revoked, tokens["revoked"] = keys.create("gone-actor", ["clerk"])
        keys.revoke(revoked.id)
        client = httpx.Client(base_url=live_server.url, timeout=30)
        opened.append((engine, client))
        served = Served(engine, client, tokens)
        logger = structlog.wrap_logger(
            structlog.PrintLogger(served.log),
            processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        )
        app = create_app(engine, config or ApiConfig(), logger=logger)
        served.limit = app.state.api.auth_failures
        live_server.slot.app = app
        return served

    yield start
    live_server.slot.app = None
    for engine, client in opened:
        client.close()
        engine.close()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (status, PROBLEM) == (response.status_code, response.headers["content-type"])
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:opcatflow:problem:{code}"
    return body


# -- Host and public URL ------------------------------------------------------------------------


def test_a_forged_host_is_refused_not_reflected_and_nothing_is_stored(serve: Serve) -> None:
    api = serve()
    forged = {**api.auth("clerk"), "Host": "attacker.example"}
    response = api.client.post("/instances", json=CASE, headers=forged)
    assert_problem(response, 400, "untrusted-host")
    assert "attacker" not in response.text
    assert "attacker" not in json.dumps(dict(response.headers))
    assert api.instances() == 0
    # the refusal is still in the request log
    [logged] = [e for e in api.events("http_request") if e["status"] == 400]
    assert logged["path"] == "/instances"


def test_location_is_built_on_the_public_url_whatever_the_trusted_host(serve: Serve) -> None:
    api = serve(ApiConfig(public_url="https://npm.example.org/opcatflow/"))
    for host in ("localhost", "npm.example.org"):
        headers = {**api.auth("clerk"), "Host": host}
        response = api.client.post("/instances", json=CASE, headers=headers)
        assert response.status_code == 201, response.text
        location = f"https://npm.example.org/opcatflow/instances/{response.json()['id']}"
        assert response.headers["location"] == location
    assert api.client.get("/openapi.json").json()["servers"] == [
        {"url": "https://npm.example.org/opcatflow/"}
    ]


def test_without_a_public_url_location_names_the_trusted_host(serve: Serve) -> None:
    api = serve(ApiConfig(trusted_hosts=("api.npm.test",)))
    headers = {**api.auth("clerk"), "Host": "api.npm.test:8443"}
    response = api.client.post("/instances", json=CASE, headers=headers)
    assert response.headers["location"].startswith("http://api.npm.test:8443/instances/")
    assert_problem(
        api.client.get("/workflows", headers={"Host": "localhost"}), 400, "untrusted-host"
    )
    # probes answer whatever host an orchestrator names: they build no URL and hold nothing
    for probe in ("/health", "/ready"):
        assert api.client.get(probe, headers={"Host": "10.0.0.7:8000"}).status_code == 200


@pytest.mark.parametrize(
    ("header", "pattern", "expected"),
    [
        ("localhost:8000", "localhost", True),
        ("LOCALHOST", "localhost", True),
        ("[::1]:8000", "::1", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("api.npm.example.org", "*.npm.example.org", True),
        ("npm.example.org.attacker.test", "*.npm.example.org", False),
        ("evilnpm.example.org", "*.npm.example.org", False),
        ("localhost.attacker.test", "localhost", False),
        ("localhost:80@attacker.test", "localhost", False),
        ("anything.test", "*", True),
        ("", "localhost", False),
    ],
)
def test_host_matching(header: str, pattern: str, expected: bool) -> None:
    assert expected == trusted(pattern, host_name(header))


def test_serve_refuses_a_public_url_that_is_not_one() -> None:
    args = ["serve", "--public-url", "npm.example.org", "--port", "1"]
    result = CliRunner().invoke(cli_app, args, env={"OPCATFLOW_DB": None})
    assert result.exit_code == 2
    assert "not an absolute http(s) URL: 'npm.example.org'" in result.stderr


def test_serve_trusts_its_own_address_the_local_names_and_those_it_is_told() -> None:
    from opcatflow.adapters.cli.serve import api_config

    config = api_config("10.1.2.3", "https://npm.example.org", ["*.npm.test"])
    assert config.hosts() == (
        "10.1.2.3",
        "localhost",
        "127.0.0.1",
        "::1",
        "*.npm.test",
        "npm.example.org",
    )
    assert api_config("0.0.0.0", None, []).hosts() == ("localhost", "127.0.0.1", "::1")


# -- failed authentications ---------------------------------------------------------------------


def test_each_failed_authentication_is_a_security_event_without_the_secret(serve: Serve) -> None:
    api = serve()
    key_id, secret = api.tokens["clerk"].removeprefix("opf_").split("_", 1)
    attempts = {
        "wrong_secret": f"Bearer opf_{key_id}_{secret[::-1]}",
        "unknown_key": f"Bearer opf_0123456789ab_{secret}",
        "revoked": f"Bearer {api.tokens['revoked']}",
        "malformed": f"Bearer {secret}",
        "not_bearer": f"Basic {secret}",
    }
    for header in attempts.values():
        response = api.client.get("/workflows", headers={"Authorization": header})
        assert_problem(response, 401, "unauthorized")
    assert_problem(api.client.get("/workflows"), 401, "unauthorized")
    events = api.events("auth_failed")
    assert [e["reason"] for e in events] == [*attempts, "missing"]
    assert [e["key_id"] for e in events] == [
        key_id,
        "0123456789ab",
        api.tokens["revoked"].split("_")[1],
        None,
        None,
        None,
    ]
    assert {(e["client"], e["path"], e["level"]) for e in events} == {
        ("127.0.0.1", "/workflows", "warning")
    }
    logged = api.log.getvalue()
    assert secret not in logged
    assert secret[::-1] not in logged
    assert api.tokens["revoked"].split("_", 2)[2] not in logged


def test_no_presented_secret_reaches_the_log(serve: Serve) -> None:
    api = serve(ApiConfig(auth_failure_limit=0))
    secrets = st.text(st.characters(codec="ascii", categories=["L", "N", "Pd", "Pc"]), min_size=12)

    @settings(max_examples=25, deadline=None)
    @given(key_id=st.sampled_from(["0123456789ab", "", "XYZ", "0123456789abcdef0"]), secret=secrets)
    def check(key_id: str, secret: str) -> None:
        assume(secret not in ("0123456789ab", "wrong_secret"))  # words the event holds anyway
        api.log.seek(0)
        api.log.truncate()
        header = {"Authorization": f"Bearer opf_{key_id}_{secret}"}
        assert api.client.get("/workflows", headers=header).status_code == 401
        [event] = api.events("auth_failed")
        assert secret not in json.dumps(event)

    check()


def test_twenty_failures_a_minute_then_429_until_the_window_passes(serve: Serve) -> None:
    api = serve()  # the default limit: 20 failures a minute
    now = [1000.0]
    assert api.limit is not None
    api.limit.now = lambda: now[0]
    wrong = {"Authorization": "Bearer opf_0123456789ab_not-the-secret"}
    for _ in range(20):
        assert api.client.get("/workflows", headers=wrong).status_code == 401
        now[0] += 1
    refused = api.client.get("/workflows", headers=api.auth("clerk"))  # even a good key
    body = assert_problem(refused, 429, "too-many-requests")
    assert refused.headers["retry-after"] == "40"  # the first failure leaves the window at 1060
    assert "try again later" in body["detail"]
    [reached] = api.events("auth_limit_reached")
    assert (reached["client"], reached["failures"], reached["window_s"]) == ("127.0.0.1", 20, 60.0)
    now[0] = 1060.0
    assert api.client.get("/workflows", headers=api.auth("clerk")).status_code == 200
    assert api.instances() == 0


def test_the_limit_can_be_turned_off(serve: Serve) -> None:
    api = serve(ApiConfig(auth_failure_limit=0))
    wrong = {"Authorization": "Bearer opf_0123456789ab_not-the-secret"}
    statuses = {api.client.get("/workflows", headers=wrong).status_code for _ in range(30)}
    assert statuses == {401}


def test_requests_without_a_key_do_not_count_against_an_address(serve: Serve) -> None:
    api = serve(ApiConfig(auth_failure_limit=2))
    statuses = {api.client.get("/workflows").status_code for _ in range(5)}
    assert statuses == {401}
    assert api.client.get("/workflows", headers=api.auth("clerk")).status_code == 200


def test_the_window_slides_and_addresses_are_kept_apart() -> None:
    now = [0.0]
    limit = FailureLimit(3, 10.0, now=lambda: now[0])
    for t in (0.0, 4.0, 8.0):
        now[0] = t
        assert limit.retry_after("a") is None
        limit.failed("a")
    assert limit.retry_after("a") == 2  # the failure at 0 leaves at 10
    assert limit.retry_after("b") is None
    now[0] = 10.0
    assert limit.retry_after("a") is None  # two failures left in the window
    assert limit.failed("a") is True  # and this one makes three again
    assert limit.retry_after("a") == 4


def test_only_so_many_addresses_are_remembered() -> None:
    limit = FailureLimit(1, 60.0, now=lambda: 0.0, max_clients=2)
    for client in ("a", "b", "c"):
        limit.failed(client)
    assert [limit.retry_after(c) for c in ("a", "b", "c")] == [None, 60, 60]


def test_an_oversized_body_is_refused_and_logged(serve: Serve) -> None:
    api = serve(ApiConfig(max_body=2048))
    body = {**CASE, "data": {"title": "x" * 4096}}
    response = api.client.post("/instances", json=body, headers=api.auth("clerk"))
    assert_problem(response, 413, "payload-too-large")
    assert [e["status"] for e in api.events("http_request")] == [413]
    assert api.instances() == 0
