"""Ids people can type and lists they can act on, from the command line, on both backends:
the full id ``list`` prints works everywhere, and so does any unique prefix of 8 characters
or more; ``list`` pages with a cursor and says how many more there are; a filter naming
nothing that exists is an error with a did-you-mean, not an empty list."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import COMPLAINT, DEFINITIONS
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import SQLAlchemyStore
from opcatflow.engine.audit import make_record
from opcatflow.workflows import BUNDLED

ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None, "COLUMNS": "200"}
INTAKE = ["--actor", "m.okafor", "--role", "intake"]
Run = Callable[..., Result]


@pytest.fixture
def cli(db_url: str) -> Run:
    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["--db", db_url, *args], env=ENV)

    return run


def failed(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def start(cli: Run, **data: Any) -> str:
    result = cli("start", "complaint", *INTAKE, "--data", json.dumps({**COMPLAINT, **data}), "-q")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def listed_ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [line.split()[0] for line in result.stdout.splitlines()[1:] if "-" in line.split()[0]]


def twin(db_url: str, instance_id: str, suffix: str) -> str:
    """Store a copy of an instance under an id sharing its first 24 characters: two real
    rows an 8-character prefix cannot tell apart (uuid4 ids almost never share one)."""
    store = SQLAlchemyStore(db_url)
    try:
        with store.write() as uow:
            original = uow.instances.get(instance_id)
            copy_id = instance_id[:24] + suffix
            first = make_record(
                instance_id=copy_id,
                seq=1,
                at=datetime(2026, 3, 2, tzinfo=UTC),
                actor="a",
                role="intake",
                workflow_id=original.workflow_id,
                workflow_version=original.workflow_version,
                trigger="start",
                from_state=None,
                to_state=original.state,
                outcome="started",
                reason=None,
                changes="{}",
                prev_hash="0" * 64,
            )
            uow.instances.insert(
                dataclasses.replace(original, id=copy_id, audit_seq=1, audit_head=first.hash)
            )
            uow.audit.append(first)
    finally:
        store.close()
    return copy_id


def test_an_id_list_prints_works_in_show_fire_and_history_whole_or_as_a_prefix(
    cli: Run, db_url: str
) -> None:
    start(cli)
    (full,) = listed_ids(cli("list"))
    assert len(full) == 36  # the whole id, never a shortened one
    prefix = full[:8]
    assert cli("show", prefix).stdout.splitlines()[0].split()[1] == full
    assert json.loads(cli("show", full, "--json").stdout)["id"] == full
    fired = cli("fire", prefix, "acknowledge", *INTAKE)
    assert fired.exit_code == 0, fired.output
    assert full in fired.stdout
    history = cli("history", full[:13])
    assert history.stdout.startswith(f"{full}: 2 audit records")
    assert cli("triggers", prefix, "--role", "intake").exit_code == 0
    assert cli("audit", "export", "--instance", prefix).stdout.count("\n") == 2

    other = twin(db_url, full, "f" * 12)
    line = failed(cli("show", prefix), 2)
    assert f"'{prefix}' is the start of several instance ids ({full}, {other})" in line
    assert failed(cli("fire", full[:24], "record", *INTAKE), 2).count(full[:24]) == 3
    assert cli("show", full).exit_code == 0  # a full id is never ambiguous
    assert cli("show", other[:25]).stdout.splitlines()[0].split()[1] == other
    assert "too short" in failed(cli("history", full[:7]), 2)
    assert failed(cli("show", "0123abcd"), 5) == "error: no instance 0123abcd"
    assert failed(cli("start", "complaint", *INTAKE, "--parent", "0123abcd"), 5)


def test_list_pages_with_a_cursor_and_says_how_many_more(cli: Run) -> None:
    ids = [start(cli) for _ in range(5)]
    first = cli("list", "--limit", "2")
    assert listed_ids(first) == ids[:2]
    last_line = first.stdout.splitlines()[-1]
    assert last_line.startswith("3 more: repeat with --after ")
    cursor = last_line.split()[-1]
    late = start(cli)  # started between two pages: listed at the end, nothing skipped
    second = cli("list", "--limit", "2", "--after", cursor)
    assert listed_ids(second) == ids[2:4]
    page = json.loads(cli("list", "--limit", "2", "--after", cursor, "--json").stdout)
    assert [i["id"] for i in page["items"]] == ids[2:4]
    assert page["more"] == 2
    rest = json.loads(cli("list", "--after", page["next_cursor"], "--json").stdout)
    assert [i["id"] for i in rest["items"]] == [ids[4], late]
    assert rest == {**rest, "more": 0, "next_cursor": None}
    assert "more" not in cli("list").stdout  # all shown: nothing more to say
    assert "not a cursor" in failed(cli("list", "--after", "bm90IGEgY3Vyc29y"), 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "recieved"], "no workflow has a state 'recieved' (did you mean 'received'?)"),
        (["--workflow", "complaint", "--state", "acknowleged"], "(did you mean 'acknowledged'?)"),
        (["--workflow", "complant"], "no workflow 'complant' (did you mean 'complaint'?)"),
        (["--where", "chanel=mail"], "unknown field 'chanel' (did you mean 'channel'?)"),
        (["--where", "channel=male"], "not 'male' (did you mean 'mail'?)"),
        (["--where", "persons=P1"], "persons is a list: lists cannot be filtered on"),
    ],
)
def test_a_filter_naming_nothing_that_exists_is_an_error(
    args: Sequence[str], message: str, tmp_path: Any
) -> None:
    db = str(tmp_path / "filters.db")
    assert CliRunner().invoke(app, ["--db", db, "db", "upgrade"], env=ENV).exit_code == 0
    result = CliRunner().invoke(app, ["--db", db, "list", *args], env=ENV)
    assert message in failed(result, 2)


def test_list_and_show_print_the_declared_summary_never_a_personal_field(cli: Run) -> None:
    def run(*args: str) -> Result:
        return cli("--workflows", str(DEFINITIONS / "summary"), "--workflows", str(BUNDLED), *args)

    data = {"reference": "NPM-2026-0042", "person": "Ana Pereira", "kind": "complaint"}
    started = run("start", "dossier", "--actor", "c", "--role", "clerk", "--data", json.dumps(data))
    assert started.exit_code == 0, started.output
    table = run("list").stdout.splitlines()
    assert table[0].split()[-1] == "SUMMARY"
    assert table[1].endswith("NPM-2026-0042")
    assert "Ana" not in run("list").stdout
    instance_id = table[1].split()[0]
    assert "  summary  NPM-2026-0042" in run("show", instance_id).stdout
    assert json.loads(run("show", instance_id, "--json").stdout)["summary"] == "NPM-2026-0042"
    assert json.loads(run("list", "--json").stdout)["items"][0]["summary"] == "NPM-2026-0042"
