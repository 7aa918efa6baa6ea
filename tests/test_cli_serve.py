"""``opcatflow apikey`` (in process, both backends) and ``opcatflow serve`` as real processes:
first start on a new SQLite file with the example seeded, JSON log lines, a clean stop on
SIGTERM; two replicas (one with two API workers) sharing one PostgreSQL schema."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from channel_servers import free_port
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.adapters.http.app import openapi_document
from opcatflow.engine import SQLAlchemyStore
from opcatflow.engine.sql import tables as t

STARTED = {
    "workflow": "complaint",
    "role": "intake",
    "data": {"source": "staff", "channel": "email", "received_on": "2026-03-02"},
}
CLEAN_ENV = {
    "OPCATFLOW_DB": None,
    "OPCATFLOW_LOG_LEVEL": None,
    "OPCATFLOW_NOTIFICATIONS": None,
    "OPCATFLOW_SETTINGS": None,
    "COLUMNS": "160",
}


def cli(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", db_url, *args], env=CLEAN_ENV)


# -- apikey ------------------------------------------------------------------------------------


def test_a_key_is_shown_once_and_stored_only_as_a_hash(db_url: str) -> None:
    created = cli(
        db_url, "apikey", "create", "--actor", "cms", "--role", "intake", "--role", "head"
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("opf_")
    assert "shown only now" in created.stderr
    listed = cli(db_url, "apikey", "list", "--json")
    [key] = json.loads(listed.stdout)
    assert (key["actor"], key["roles"], key["revoked_at"]) == ("cms", ["intake", "head"], None)
    assert token not in listed.stdout
    store = SQLAlchemyStore(db_url)
    try:
        with store.connect() as conn:
            row = conn.execute(sa.select(t.api_keys)).one()
    finally:
        store.close()
    secret = token.split("_", 2)[2]  # the secret itself may contain "_" (URL-safe base64)
    assert len(secret) >= 43
    assert secret not in str(tuple(row))


def test_a_revoked_key_is_listed_only_on_request(db_url: str) -> None:
    created = cli(db_url, "apikey", "create", "--actor", "cms", "--role", "admin", "--json")
    key_id = json.loads(created.stdout)["id"]
    revoked = cli(db_url, "apikey", "revoke", key_id)
    assert revoked.exit_code == 0
    assert revoked.stdout.strip() == f"key {key_id} (cms) revoked"
    assert cli(db_url, "apikey", "list").stdout.strip() == "no API keys"
    everything = json.loads(cli(db_url, "apikey", "list", "--revoked", "--json").stdout)
    assert everything[0]["revoked_at"] is not None


def test_apikey_errors(db_url: str) -> None:
    for args, code, message in [
        (
            ["create", "--actor", "x", "--role", "intkae"],
            2,
            "unknown role 'intkae' (did you mean 'intake'?)",
        ),
        (
            ["create", "--actor", "x", "--role", "scheduler"],
            2,
            "reserved for the deadline scheduler",
        ),
        (["revoke", "nope"], 5, "no API key nope"),
    ]:
        result = cli(db_url, "apikey", *args)
        assert (result.exit_code, message in result.stderr) == (code, True), result.output


def test_serve_writes_the_openapi_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    result = CliRunner().invoke(app, ["serve", "--openapi", str(target)], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == openapi_document()


# -- serve as a process -----------------------------------------------------------------------


def readme_session() -> str:
    """The shell session under the README's "The HTTP API"."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("## The HTTP API", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def json_values(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    values, at = [], 0
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return values


def environment() -> dict[str, str]:
    # the test's own key file stays: a server must not write the user's ~/.config
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPCATFLOW_") or k == "OPCATFLOW_KEY_FILE"
    }
    return {**env, "PYTHONUNBUFFERED": "1"}


@contextmanager
def serving(args: Sequence[str], cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``opcatflow ARGS`` started in ``cwd``; yields it and its URL once it is ready. Its
    standard error goes to ``cwd/serve-<port>.log`` (a pipe nobody reads could fill up)."""
    port = free_port()
    command = [sys.executable, "-m", "opcatflow.adapters.cli", *args, "--port", str(port)]
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            command, cwd=cwd, env=environment(), stdout=subprocess.DEVNULL, stderr=err
        )
    process.log = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.2)
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                process.kill()
                process.wait()
                raise


def stop(process: subprocess.Popen[bytes]) -> tuple[int, list[dict[str, Any]]]:
    """SIGTERM, then the exit code and every log line (each must be JSON)."""
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    log: Path = process.log  # type: ignore[attr-defined]
    return process.returncode, [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.skipif(
    shutil.which("curl") is None or not (Path(__file__).parent.parent / "README.md").exists(),
    reason="needs curl, and the README (outside a checkout: the wheel test)",
)
def test_serve_starts_on_a_new_sqlite_file_with_the_example_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    with serving(["serve", "--example"], tmp_path) as (process, url):
        assert (tmp_path / "opcatflow.db").exists()  # the default database, created
        key_file = tmp_path / "example.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        auth = {"Authorization": f"Bearer {key_file.read_text().strip()}"}
        [complaint] = httpx.get(f"{url}/instances", headers=auth).json()["items"]
        assert complaint["data"]["persons"] == [
            {"ref": "P1", "name": "Tomás Varga"}
        ]  # the key reads it all
        # the README's session, as written (but for the port), twice: the POST is idempotent
        session = readme_session().replace("127.0.0.1:8000", url.removeprefix("http://"))
        for _ in range(2):
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", session],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert ran.returncode == 0, ran.stderr
        *_, fired, history = json_values(ran.stdout)  # curl -s prints them back to back
        assert (fired["state"], fired["version"]) == ("acknowledged", 2)
        changed = [r["trigger"] for r in history if r["outcome"] in ("started", "applied")]
        assert changed == ["start", "acknowledge"]  # (and the records of their obligations)
        assert httpx.get(f"{url}/audit/verify", headers=auth).json()["ok"] is True
        code, lines = stop(process)
    assert code == 0
    events = [line["event"] for line in lines]
    assert events[0] == "instance_started"
    assert {"example_ready", "worker_started", "http_request", "serve_stopped"} <= set(events)
    assert events[-1] == "serve_stopped"
    requests = [line for line in lines if line["event"] == "http_request"]
    assert {r["route"] for r in requests} >= {"/ready", "/instances/{instance_id}/transitions"}
    assert "Tomás" not in "\n".join(json.dumps(line) for line in lines)
    # a second start finds the example in place: nothing seeded twice, the same key; and it
    # answers to the hosts it is told of, building Location on the public URL
    public = ["--public-url", "https://npm.example.org/api", "--trusted-host", "*.npm.test"]
    limit = ["--auth-failure-limit", "1"]
    with serving(["serve", "--example", *public, *limit], tmp_path) as (_, url):
        listed = httpx.get(f"{url}/instances", headers=auth).json()["items"]
        as_named = {**auth, "Host": "opcatflow.npm.test"}
        started = httpx.post(f"{url}/instances", json=STARTED, headers=as_named)
        forged = httpx.get(f"{url}/instances", headers={**auth, "Host": "attacker.test"})
        guess = {"Authorization": "Bearer opf_0123456789ab_guess"}
        guessed = [httpx.get(f"{url}/workflows", headers=guess).status_code for _ in range(2)]
    assert [i["state"] for i in listed] == ["acknowledged"]
    location = f"https://npm.example.org/api/instances/{started.json()['id']}"
    assert (started.status_code, started.headers["location"]) == (201, location)
    assert forged.status_code == 400
    assert forged.json()["type"] == "urn:opcatflow:problem:untrusted-host"
    assert guessed == [401, 429]


@pytest.mark.slow
def test_two_replicas_share_one_postgresql_database(pg_admin: sa.Engine, tmp_path: Path) -> None:
    from conftest import new_pg_schema

    schema, url = new_pg_schema(pg_admin)
    try:
        token = cli(url, "apikey", "create", "--actor", "cms", "--role", "intake").stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        body = {
            "workflow": "complaint",
            "data": {"source": "staff", "channel": "mail", "received_on": "2026-03-02"},
        }
        with (
            serving(["serve", "--db", url], tmp_path) as (one, url_one),
            serving(["serve", "--db", url, "--workers", "2"], tmp_path) as (two, url_two),
        ):
            headers = {**auth, "Idempotency-Key": "replica-test"}
            first = httpx.post(f"{url_one}/instances", json=body, headers=headers)
            again = httpx.post(f"{url_two}/instances", json=body, headers=headers)
            assert (first.status_code, again.status_code) == (201, 201)
            assert again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
            listed = httpx.get(f"{url_two}/instances", headers=auth).json()["items"]
            assert [i["id"] for i in listed] == [first.json()["id"]]
            for process in (one, two):
                code, _ = stop(process)
                assert code == 0
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def test_an_overdue_obligation_stays_listed_over_http_after_a_serve_restart(
    db_url: str, tmp_path: Path
) -> None:
    token = cli(db_url, "apikey", "create", "--actor", "cms", "--role", "intake").stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    # received Monday 6 January 2025: 7 days, so its last day was Monday 13 January 2025
    body = {
        "workflow": "complaint",
        "data": {"source": "staff", "channel": "mail", "received_on": "2025-01-06"},
    }
    with serving(["serve", "--db", db_url], tmp_path) as (process, url):
        created = httpx.post(f"{url}/instances", json=body, headers=auth)
        assert created.status_code == 201, created.text
        case = created.json()["id"]
        assert "its last day was 2025-01-13" in created.json()["notices"][0]
        listed = httpx.get(f"{url}/deadlines", params={"overdue": "true"}, headers=auth).json()[
            "items"
        ]
        assert [(e["instance_id"], e["deadline"], e["status"], e["last_day"]) for e in listed] == [
            (case, "acknowledge", "due", "2025-01-13")
        ]
        code, _ = stop(process)
        assert code == 0
    with serving(["serve", "--db", db_url], tmp_path) as (process, url):  # its worker sweeps
        listed = httpx.get(f"{url}/deadlines", params={"overdue": "true"}, headers=auth).json()[
            "items"
        ]
        assert [(e["instance_id"], e["deadline"], e["last_day"], e["overdue"]) for e in listed] == [
            (case, "acknowledge", "2025-01-13", True)
        ]
        assert stop(process)[0] == 0
