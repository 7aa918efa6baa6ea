"""Records through the edges: the HTTP API (personal sub-fields withheld on their own, the
change form, an append-only refusal as a problem) and the CLI (``--set`` a change, history
by entry), on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import registerkit
from http_server import LiveServer, live_server_fixture  # noqa: F401
from test_cli import Run, cli  # noqa: F401
from test_records import LEDGER, NAME, ledger_registry

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.notifications.redaction import WITHHELD
from opcatflow.workflows import BUNDLED, registry


@dataclass
class Api:
    client: httpx.Client
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, json=body)


@pytest.fixture
def api(live_server: LiveServer, db_url: str, clock: FrozenClock) -> Iterator[Api]:
    with Engine.open(db_url, [LEDGER], ledger_registry(), clock=clock) as engine:
        keys = ApiKeys(engine.store, clock)
        tokens = {role: keys.create(f"{role}-actor", [role])[1] for role in ("clerk", "head")}
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                yield Api(client, tokens)
        finally:
            live_server.slot.app = None


def test_http_withholds_personal_sub_fields_only_and_refuses_rewriting_a_log(api: Api) -> None:
    notes = {"append": [{"text": "Asked for a doctor", "about": NAME}]}
    started = api.call(  # head: a clerk may not write 'about', which it may not read
        "POST", "/instances", "head", {"workflow": "ledger", "data": {"notes": notes}}
    )
    assert started.status_code == 201, started.text
    i = started.json()["id"]
    seen = api.call("GET", f"/instances/{i}", "clerk").json()
    assert (seen["data"]["notes"], seen["withheld"]) == (
        [{"n": 1, "text": "Asked for a doctor", "about": WITHHELD}],
        ["log", "notes"],  # every field with something withheld, set or not
    )
    assert api.call("GET", f"/instances/{i}", "head").json()["data"]["notes"][0]["about"] == NAME
    history = api.call("GET", f"/instances/{i}/history", "clerk").json()
    assert history[0]["changes"]["notes"]["1"] == {
        "n": [None, 1],
        "text": [None, "Asked for a doctor"],
        "about": [None, WITHHELD],
    }
    assert NAME not in json.dumps(history)

    log = {"log": {"append": [{"ref": "D1", "text": "Visit Block C"}]}}
    fired = api.call(
        "POST", f"/instances/{i}/transitions", "head", {"trigger": "note", "data": log}
    )
    assert fired.status_code == 200, fired.text
    rewrite = {"log": [{"ref": "D1", "text": "Visit Block D"}]}
    refused = api.call(
        "POST", f"/instances/{i}/transitions", "head", {"trigger": "note", "data": rewrite}
    )
    assert (refused.status_code, refused.json()["kind"]) == (422, "data")
    assert refused.json()["detail"].endswith("this edits [D1] (text)")

    schema = api.call("GET", "/workflows/ledger/schema", "clerk").json()
    full, change, _ = schema["properties"]["notes"]["anyOf"]
    assert full["items"]["properties"]["about"]["x-personal"] is True
    assert change["properties"]["append"]["items"]["required"] == ["text"]  # n is numbered


EXPERT = ["--actor", "dr.osei", "--role", "expert"]
COORDINATOR = ["--actor", "s.nakamura", "--role", "coordinator"]


def test_the_cli_appends_by_key_and_shows_the_entry_in_history(
    cli: Run,  # noqa: F811
    db_url: str,
) -> None:
    with Engine.open(db_url, [BUNDLED], registry) as engine:
        registerkit.seed(engine)
    data = {"person": registerkit.OSEI, "user": "dr.osei", "recruitment": "ad_hoc"}
    result = cli("start", "expert", *COORDINATOR, "--data", json.dumps(data), "-q")
    assert result.exit_code == 0, result.output
    expert = result.stdout.strip()
    change = f'conflicts_of_interest={{"append": [{{"place": "{registerkit.HOSPITAL}"}}]}}'
    result = cli("fire", expert, "declare_conflict", *EXPERT, "--set", change)
    assert result.exit_code == 0, result.output
    history = cli("history", expert).stdout
    assert f"conflicts_of_interest[{registerkit.HOSPITAL}].place=" in " ".join(history.split())
    withdraw = f'conflicts_of_interest=[{{"place": "{registerkit.POLICE}"}}]'
    result = cli("fire", expert, "declare_conflict", *EXPERT, "--set", withdraw)
    assert result.exit_code == 3
    assert "append-only" in result.stderr
    assert f"removes [{registerkit.HOSPITAL}]" in " ".join(result.stderr.split())
