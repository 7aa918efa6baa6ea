"""Ids people can type and lists they can act on, from the command line, on both backends:
the full id ``list`` prints works everywhere, and so does any unique prefix of 8 characters
or more; ``list`` pages with a cursor and says how many more there are; a filter naming
nothing that exists is an error with a did-you-mean, not an empty list.

The commands run over one small definition (tests/definitions/summary), so that each costs
little more than its own work."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DEFINITIONS
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, SQLAlchemyStore
from opcatflow.engine.audit import make_record
from opcatflow.engine.crypto.cipher import is_sealed
from opcatflow.workflows import registry

SUMMARY = DEFINITIONS / "summary"
ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None, "COLUMNS": "200"}
CLERK = ["--actor", "c.ruiz", "--role", "clerk"]
DOSSIER = {"reference": "NPM-2026-0042", "person": "Ana Pereira", "kind": "complaint"}
Run = Callable[..., Result]


def runner(db: str) -> Run:
    def run(*args: str) -> Result:
        return CliRunner().invoke(
            app, ["--db", db, "--no-bundled", "--workflows", str(SUMMARY), *args], env=ENV
        )

    return run


@pytest.fixture
def cli(db_url: str) -> Run:
    return runner(db_url)


def failed(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def start(db_url: str, count: int = 1) -> list[str]:
    """Start dossiers through one engine (the commands under test are those that read)."""
    with Engine.open(db_url, [SUMMARY], registry) as engine:
        return [
            engine.start("dossier", actor="c.ruiz", role="clerk", data=DOSSIER).id
            for _ in range(count)
        ]


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
                actor="c.ruiz",
                role="clerk",
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
            # The original's sealed values open only under its own data key: not copied.
            data = {k: v for k, v in original.data.items() if not is_sealed(v)}
            uow.instances.insert(
                dataclasses.replace(
                    original, id=copy_id, data=data, audit_seq=1, audit_head=first.hash
                )
            )
            uow.audit.append(first)
    finally:
        store.close()
    return copy_id


def test_an_id_list_prints_works_in_show_fire_and_history_whole_or_as_a_prefix(
    cli: Run, db_url: str
) -> None:
    start(db_url)
    (full,) = listed_ids(cli("list"))
    assert len(full) == 36  # the whole id, never a shortened one
    prefix = full[:8]
    assert cli("show", prefix).stdout.splitlines()[0].split()[1] == full
    fired = cli("fire", prefix, "note", *CLERK, "--set", "pages=3")
    assert fired.exit_code == 0, fired.output
    assert full in fired.stdout
    assert cli("history", full[:13]).stdout.startswith(f"{full}: ")
    exported = cli("audit", "export", "--instance", prefix).stdout.splitlines()
    assert len(exported) >= 2  # start and note, and the records of its obligations
    assert all(full in line for line in exported)

    other = twin(db_url, full, ("0" if full[24] != "0" else "1") * 12)  # differs at 25
    line = failed(cli("show", prefix), 2)
    both = ", ".join(sorted((full, other)))
    assert f"'{prefix}' is the start of several instance ids ({both})" in line
    assert json.loads(cli("show", full, "--json").stdout)["id"] == full  # never ambiguous
    assert "close" in cli("triggers", other[:25], "--role", "clerk").stdout
    assert failed(cli("fire", "0123abcd", "close", *CLERK), 5) == "error: no instance 0123abcd"


def test_list_pages_with_a_cursor_and_says_how_many_more(cli: Run, db_url: str) -> None:
    ids = start(db_url, 3)
    first = cli("list", "--limit", "2")
    assert listed_ids(first) == ids[:2]
    last_line = first.stdout.splitlines()[-1]
    assert last_line.startswith("1 more: repeat with --after ")
    (late,) = start(db_url)  # started between two pages: listed at the end, nothing skipped
    page = json.loads(
        cli("list", "--limit", "1", "--after", last_line.split()[-1], "--json").stdout
    )
    assert [i["id"] for i in page["items"]] == [ids[2]]
    assert page["more"] == 1
    assert page["items"][0]["summary"] == "NPM-2026-0042"
    rest = cli("list", "--after", page["next_cursor"])
    assert listed_ids(rest) == [late]
    assert "more" not in rest.stdout  # all shown: nothing more to say
    assert "not a cursor" in failed(cli("list", "--after", "bm90IGEgY3Vyc29y"), 2)


FILTER_TYPOS = [
    (["--state", "opne"], "workflow 'dossier' has no state 'opne' (did you mean 'open'?)"),
    (["--workflow", "dosier"], "no workflow 'dosier' (did you mean 'dossier'?)"),
    (["--where", "kidn=inquiry"], "unknown field 'kidn' (did you mean 'kind'?)"),
    (["--where", "kind=inquery"], "not 'inquery' (did you mean 'inquiry'?)"),
    (["--where", "pages=many"], "pages is an integer field, not 'many'"),
]


def test_a_filter_naming_nothing_that_exists_or_a_short_id_is_an_error(tmp_path: Path) -> None:
    # refused before the store is asked anything: one backend says it
    run = runner(str(tmp_path / "filters.db"))
    assert run("db", "upgrade").exit_code == 0
    for args, message in FILTER_TYPOS:
        assert message in failed(run("list", *args), 2)
    assert "too short" in failed(run("history", "0123abc"), 2)


def test_list_and_show_print_the_declared_summary_never_a_personal_field(
    cli: Run, db_url: str
) -> None:
    (instance_id,) = start(db_url)
    listed = cli("list").stdout
    table = listed.splitlines()
    assert table[0].split()[-1] == "SUMMARY"
    assert table[1].endswith("NPM-2026-0042")
    assert "Ana" not in listed
    assert "  summary  NPM-2026-0042" in cli("show", instance_id).stdout
