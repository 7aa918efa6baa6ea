"""The CLI at its edges: a database that is not there, files it must not read or cannot write.

Each refusal is one line naming the path, with a documented exit code, and stores nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import COMPLAINT, new_pg_schema
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.adapters.cli.files import DATA_FILE_LIMIT

NOT_FOUND, USAGE = 5, 2
INTAKE = ["--actor", "m.okafor", "--role", "intake"]
CLEAN_ENV = {
    "OPCATFLOW_DB": None,
    "OPCATFLOW_ACTOR": None,
    "OPCATFLOW_ROLE": None,
    "OPCATFLOW_LOG_LEVEL": None,
    "COLUMNS": "100",
}


def invoke(args: Sequence[str], **kw: Any) -> Result:
    return CliRunner().invoke(app, list(args), env=CLEAN_ENV, **kw)


def assert_error(result: Result, code: int) -> str:
    """The command failed with ``code``, in exactly one line on standard error."""
    assert code == result.exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


READ_ONLY = [
    ["show", "some-id"],
    ["history", "some-id"],
    ["triggers", "some-id", "--role", "intake"],
    ["fire", "some-id", "acknowledge", *INTAKE],
    ["list"],
    ["deadlines"],
    ["calendar"],
    ["audit", "verify"],
    ["audit", "export"],
    ["report", "complaints"],
    ["apikey", "list"],
    ["outbox"],
]


def tables(db_url: str) -> list[str]:
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def shown(db_url: str) -> str:
    return db_url  # the test URLs carry no password


def test_read_only_commands_refuse_a_database_that_does_not_exist(db_url: str) -> None:
    # every command on SQLite; on PostgreSQL the same check (no schema) behind three of them
    server = db_url.startswith("postgresql")
    for args in [["list"], ["audit", "verify"], ["report", "complaints"]] if server else READ_ONLY:
        line = assert_error(invoke(["--db", db_url, *args]), NOT_FOUND)
        if db_url.startswith("postgresql"):
            assert f"no opcatflow database at {shown(db_url)} (no opcatflow schema;" in line
        else:
            assert f"no database at {db_url} (no such file;" in line
    if db_url.startswith("postgresql"):
        assert tables(db_url) == []  # nothing was created
    else:
        assert not Path(db_url).exists()


def test_a_server_url_is_named_without_its_password(pg_admin: sa.Engine) -> None:
    schema, db_url = new_pg_schema(pg_admin)
    with_password = db_url.replace("postgresql://root@", "postgresql://root:s3cret@", 1)
    line = assert_error(invoke(["--db", with_password, "list"]), NOT_FOUND)
    assert "s3cret" not in line
    assert "root:***@" in line
    assert tables(db_url) == []
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def test_a_missing_folder_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    db = tmp_path / "no-such-folder" / "npm.db"
    for args in (["list"], ["start", "complaint", *INTAKE, "--data", json.dumps(COMPLAINT)]):
        line = assert_error(invoke(["--db", str(db), *args]), NOT_FOUND)
        assert line == f"error: no database at {db}: the folder {db.parent} does not exist"
    assert not db.parent.exists()


def test_a_folder_given_as_the_database_is_named(tmp_path: Path) -> None:
    line = assert_error(invoke(["--db", str(tmp_path), "list"]), NOT_FOUND)
    assert line == f"error: no database at {tmp_path}: it is a folder, not a database file"


def test_an_empty_database_created_on_purpose_is_read(db_url: str) -> None:
    assert invoke(["--db", db_url, "db", "upgrade"]).exit_code == 0
    result = invoke(["--db", db_url, "list"])
    assert (result.exit_code, result.stdout) == (0, "no instances\n")


# -- --data @FILE ----------------------------------------------------------------------------


def test_data_files_that_are_not_small_regular_utf8_files_are_refused(
    db_url: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**COMPLAINT, "summary": "x" * DATA_FILE_LIMIT}))
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(json.dumps(COMPLAINT).encode() + b"\xe9")
    cases: list[tuple[str, bytes | None, str]] = [
        (
            "@/dev/zero",
            None,
            "/dev/zero is a character device; give a regular file (at most 1 MiB)",
        ),
        (f"@{tmp_path}", None, f"{tmp_path} is a folder; give a regular file"),
        (f"@{big}", None, f"{big} is over the limit of 1 MiB (1048576 bytes)"),
        ("@-", big.read_bytes(), "standard input is over the limit of 1 MiB (1048576 bytes)"),
        (f"@{latin1}", None, f"{latin1} is not valid UTF-8"),
    ]
    assert invoke(["--db", db_url, "db", "upgrade"]).exit_code == 0
    for data, stdin, message in cases:
        args = ["--db", db_url, "start", "complaint", *INTAKE, "--data", data]
        assert message in assert_error(invoke(args, input=stdin), USAGE)
    listed = invoke(["--db", db_url, "list", "--json"])
    assert json.loads(listed.stdout)["items"] == []  # nothing stored


def test_data_from_standard_input_within_the_limit_is_read(db_url: str) -> None:
    args = ["--db", db_url, "start", "complaint", *INTAKE, "--data", "@-", "--json"]
    result = invoke(args, input=json.dumps(COMPLAINT).encode())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["summary"] == COMPLAINT["summary"]


def test_data_from_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    # a real process: if the FIFO were opened for reading, it would wait for a writer forever
    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    db = tmp_path / "npm.db"
    command = [sys.executable, "-m", "opcatflow.adapters.cli", "--db", str(db), "start"]
    command += ["complaint", *INTAKE, "--data", f"@{fifo}"]
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == USAGE
    assert f"{fifo} is a FIFO; give a regular file (at most 1 MiB)" in done.stderr
    assert not db.exists()


# -- --output FILE ---------------------------------------------------------------------------


@pytest.fixture
def demo_db(db_url: str) -> str:
    args = ["--db", db_url, "start", "complaint", *INTAKE, "--data", json.dumps(COMPLAINT)]
    assert invoke(args).exit_code == 0
    return db_url


def test_an_output_that_cannot_be_written_is_named(demo_db: str, tmp_path: Path) -> None:
    cases = [
        ("/proc/opcatflow-audit.jsonl", "cannot write /proc/opcatflow-audit.jsonl: "),
        (
            f"{tmp_path}/no-such-folder/a.jsonl",
            f"the folder {tmp_path}/no-such-folder does not exist",
        ),
        (str(tmp_path), f"cannot write {tmp_path}: it is a folder"),
    ]
    for path, reason in cases:
        line = assert_error(invoke(["--db", demo_db, "audit", "export", "--output", path]), USAGE)
        assert reason in line
    path, reason = cases[1]  # the other writers go through the same function
    for args in (["deadlines", "--ical", path], ["calendar", "--ical", path]):
        assert reason in assert_error(invoke(["--db", demo_db, *args]), USAGE)
    assert not Path("/proc/opcatflow-audit.jsonl").exists()
    left = [p.name for p in tmp_path.iterdir() if not p.name.startswith("opcatflow.db")]
    assert left == []  # no temporary file either (the SQLite database lives here too)


def test_an_export_replaces_the_file_whole_and_leaves_no_temporary_file(
    demo_db: str, tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "audit.jsonl"
    out.parent.mkdir()
    out.write_text("an older export\n")
    out.chmod(0o640)
    result = invoke(["--db", demo_db, "audit", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["trigger"] for r in records if r["outcome"] == "started"] == ["start"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in out.parent.iterdir()] == ["audit.jsonl"]


# -- demo ------------------------------------------------------------------------------------


def test_demo_runs_on_the_global_db(tmp_path: Path) -> None:
    db = tmp_path / "chosen.db"
    result = invoke(["--db", str(db), "demo"])
    assert result.exit_code == 0, result.output
    assert f"database  {db}" in result.stdout
    listed = invoke(["--db", str(db), "list", "--state", "closed", "--json"])
    assert len(json.loads(listed.stdout)["items"]) == 1


def test_demo_refuses_a_server_database_given_globally() -> None:
    line = assert_error(invoke(["--db", "postgresql://root@127.0.0.1/x", "demo"]), USAGE)
    assert "the demo runs on a SQLite file" in line
