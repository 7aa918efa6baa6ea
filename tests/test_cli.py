"""The opcatflow command line, in process (CliRunner) and as a real process, on both backends.

Every store-touching test takes ``db_url`` (a SQLite file, then a PostgreSQL schema).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import registerkit
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, InstanceNotFound, SQLAlchemyStore
from opcatflow.workflows import BUNDLED, registry

COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-01",
    "persons": [{"ref": "P1", "name": "Ana Pereira"}],
    "summary": "Beaten in cell 14 by two officers on 27 February.",
}
RECORD = ["-s", "complaint_type=ill_treatment", "-s", f"institution={registerkit.PLACE}"]
RECORD += ["-s", f"theme={registerkit.THEME}"]
ASSESS = ["-s", "seriousness=high", "-s", "urgency=urgent", "-s", "npm_best_placed=false"]
INTAKE = ["--actor", "m.okafor", "--role", "intake"]
HEAD = ["--actor", "r.haddad", "--role", "head"]
BUNDLED_IDS = [
    "authority",
    "cat_cycle",
    "complaint",
    "expert",
    "person",
    "place",
    "recommendation",
    "referral",
    "reprisal",
    "sp_visit",
    "spt_advisory",
    "spt_visit",
    "theme",
    "upr_cycle",
    "visit",
]

# The caller's environment must not leak into the tests.
CLEAN_ENV = {
    "OPCATFLOW_DB": None,
    "OPCATFLOW_ACTOR": None,
    "OPCATFLOW_ROLE": None,
    "OPCATFLOW_LOG_LEVEL": None,
    "COLUMNS": "100",
}

BROKEN_A = """\
id: broken_a
version: 1
title: Broken A
roles: {clerk: Clerk}
states:
  draft: {initial: true}
  done: {final: true}
transitions:
  - {trigger: submit, source: draft, dest: dnoe, roles: [clerk]}
  - {trigger: approve, source: draft, dest: done, roles: [boss], guards: [no_such_guard]}
"""
BROKEN_B = """\
id: broken_b
version: 1
title: Broken B
roles: {clerk: Clerk}
states:
  draft: {}
  done: {final: true}
transitions:
  - {trigger: submit, source: draft, dest: done, roles: [clerk], requires: [ghost]}
"""

Run = Callable[..., Result]


def invoke(args: Sequence[str], env: dict[str, str | None] | None = None, **kw: Any) -> Result:
    return CliRunner().invoke(app, list(args), env={**CLEAN_ENV, **(env or {})}, **kw)


@pytest.fixture
def cli(db_url: str) -> Run:
    """Run ``opcatflow --db <db_url> ARGS...`` in process."""

    def run(*args: str, env: dict[str, str | None] | None = None, **kw: Any) -> Result:
        return invoke(["--db", db_url, *args], env, **kw)

    return run


@pytest.fixture
def registers(db_url: str) -> None:
    """The register entries a recorded complaint refers to (tests/registerkit.py)."""
    with Engine.open(db_url, [BUNDLED], registry) as engine:
        registerkit.seed(engine)


@pytest.fixture
def started(cli: Run) -> str:
    """The id of a complaint just received."""
    result = cli("start", "complaint", *INTAKE, "--data", json.dumps(COMPLAINT), "-q")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def assessed(cli: Run, instance_id: str) -> None:
    for args in (
        ["record", *INTAKE, *RECORD],
        ["assess", *HEAD, *ASSESS],
    ):
        result = cli("fire", instance_id, *args)
        assert result.exit_code == 0, result.output


def assert_error(result: Result, code: int) -> str:
    """The command failed with ``code`` and said so in exactly one line on stderr."""
    assert code == result.exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def tamper(url: str, statement: str) -> None:
    """What someone with database rights can do: drop the append-only guard, then edit."""
    store = SQLAlchemyStore(url)
    try:
        with store.connect(write=True) as conn:
            if store.dialect == "postgresql":
                conn.execute(sa.text("ALTER TABLE audit DISABLE TRIGGER audit_append_only"))
            else:
                conn.execute(sa.text("DROP TRIGGER audit_append_only_update"))
                conn.execute(sa.text("DROP TRIGGER audit_append_only_delete"))
            conn.execute(sa.text(statement))
    finally:
        store.close()


# -- definitions: validate, schema, diagram (no database) ----------------------------------


def test_validate_prints_one_summary_line_per_valid_workflow() -> None:
    result = invoke(["validate", str(BUNDLED)])
    assert result.exit_code == 0, result.output
    assert re.search(r"^ok  complaint v6  Complaint triage and referral ", result.stdout, re.M)


def test_validate_lists_every_problem_of_every_file_and_exits_6(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BROKEN_A)
    (tmp_path / "b.yaml").write_text(BROKEN_B)
    result = invoke(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert "error: " in assert_error(result, 6)
    problems = result.stdout.splitlines()
    located = re.compile(rf"^{re.escape(str(tmp_path))}/[ab]\.yaml:\d+:\d+: \S")
    assert all(located.match(line) for line in problems), problems
    assert {"a.yaml", "b.yaml"} == {Path(line.split(":")[0]).name for line in problems}
    assert len(problems) >= 4
    assert any("did you mean 'done'?" in line for line in problems)


def test_validate_json_lists_problems_with_their_positions(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(BROKEN_B)
    result = invoke(["validate", "--json", str(tmp_path)])
    assert result.exit_code == 6
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["workflows"] == []
    assert {"path", "line", "column", "message"} == set(report["problems"][0])


def test_validate_json_summarises_valid_workflows() -> None:
    result = invoke(["validate", "--json", str(BUNDLED)])
    report = json.loads(result.stdout)
    assert (report["ok"], sorted(w["id"] for w in report["workflows"])) == (True, BUNDLED_IDS)


def test_validate_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert_error(invoke(["validate", str(tmp_path / "nope.yaml")]), 2)


def test_schema_is_the_json_schema_of_the_definition_format() -> None:
    result = invoke(["schema"])
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"id", "version", "states", "transitions"} <= set(schema["properties"])


@pytest.mark.parametrize(
    ("fmt", "first_line"), [("mermaid", "---"), ("dot", 'digraph "complaint" {')]
)
def test_diagram_prints_the_requested_format(fmt: str, first_line: str) -> None:
    result = invoke(["diagram", "complaint", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert first_line == result.stdout.splitlines()[0]


def test_diagram_of_a_definition_file() -> None:
    result = invoke(["diagram", str(BUNDLED / "complaint.yaml")])
    assert "stateDiagram-v2" in result.stdout.splitlines()


def test_diagram_write_docs_writes_a_page_per_workflow(tmp_path: Path) -> None:
    result = invoke(["diagram", "--write-docs", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i}.md" for i in BUNDLED_IDS]


def test_diagram_of_an_unknown_workflow_exits_5_with_a_hint() -> None:
    line = assert_error(invoke(["diagram", "complain"]), 5)
    assert "did you mean 'complaint'?" in line


# -- usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["start", "complaint"],  # no --actor / --role
        ["fire"],
        ["--log-format", "xml", "list"],
        ["list", "--where", "no-equals-sign"],
        ["audit"],
    ],
)
def test_usage_errors_exit_2_on_one_line(tmp_path: Path, args: list[str]) -> None:
    line = assert_error(invoke(["--db", str(tmp_path / "x.db"), *args]), 2)
    assert "--help" in line


def test_no_command_prints_help() -> None:
    result = invoke([])
    assert result.exit_code == 0
    assert "demo" in result.stdout


def test_version() -> None:
    assert invoke(["--version"]).stdout.startswith("opcatflow ")


def test_an_unusable_database_is_one_line_exit_1(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database\n" * 100)
    line = assert_error(invoke(["--db", str(garbage), "list"]), 1)
    assert "database error" in line


# -- instances -----------------------------------------------------------------------------


def test_start_json_is_the_stored_instance(cli: Run) -> None:
    result = cli("start", "complaint", *INTAKE, "--data", json.dumps(COMPLAINT), "--json")
    assert result.exit_code == 0, result.output
    instance = json.loads(result.stdout)
    assert (
        instance["workflow_id"],
        instance["state"],
        instance["version"],
    ) == ("complaint", "received", 1)
    assert instance["data"] == COMPLAINT
    shown = json.loads(cli("show", instance["id"], "--json").stdout)
    # show adds the case's open deadlines, by their last day in the NPM's time zone
    assert [(d["deadline"], d["due_on"]) for d in shown.pop("deadlines")][:1] == [
        ("acknowledge", "2026-03-08")
    ]
    assert shown.pop("timezone") == "UTC"
    assert shown == {**instance, "children": []}


def test_start_reads_data_from_a_file(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "complaint.json").write_text(json.dumps(COMPLAINT))
    result = cli("start", "complaint", *INTAKE, "--data", f"@{tmp_path / 'complaint.json'}")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("started complaint ")


def test_set_fields_override_data_and_read_json_values(cli: Run) -> None:
    result = cli(
        "start", "complaint", *INTAKE, "--data", json.dumps(COMPLAINT),
        "-s", "channel=mail", "-s", 'persons=[{"ref": "A"}, {"ref": "B"}]', "--json",
    )  # fmt: skip
    data = json.loads(result.stdout)["data"]
    assert (data["channel"], data["persons"]) == ("mail", [{"ref": "A"}, {"ref": "B"}])


def test_start_takes_actor_and_role_from_the_environment(cli: Run) -> None:
    env = {"OPCATFLOW_ACTOR": "m.okafor", "OPCATFLOW_ROLE": "intake"}
    result = cli("start", "complaint", "--data", json.dumps(COMPLAINT), "-q", env=env)
    assert result.exit_code == 0, result.output
    history = json.loads(cli("history", result.stdout.strip(), "--json").stdout)
    assert (history[0]["actor"], history[0]["role"]) == ("m.okafor", "intake")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("@/no/such/file.json", "cannot read"),
    ],
)
def test_bad_data_is_a_usage_error(cli: Run, data: str, message: str) -> None:
    line = assert_error(cli("start", "complaint", *INTAKE, "--data", data), 2)
    assert message in line


@pytest.mark.usefixtures("registers")
def test_fire_applies_a_transition(cli: Run, started: str) -> None:
    result = cli("fire", started, "acknowledge", *INTAKE, "--reason", "letter sent")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("acknowledge: received → acknowledged")
    fired = json.loads(cli("fire", started, "record", *INTAKE, *RECORD, "--json").stdout)
    assert (fired["state"], fired["version"]) == ("recorded", 3)


def test_a_refused_role_exits_3_and_is_audited(cli: Run, started: str) -> None:
    line = assert_error(cli("fire", started, "close", *INTAKE), 3)
    assert "refused" in line
    history = json.loads(cli("history", started, "--json").stdout)
    assert (history[-1]["trigger"], history[-1]["outcome"]) == ("close", "refused")


@pytest.mark.usefixtures("registers")
def test_a_guard_refusal_exits_3_with_its_reason(cli: Run, started: str) -> None:
    assessed(cli, started)
    seeded = cli("registers", "seed", "--actor", "r.haddad")  # the receiving bodies
    assert "authority: 8 shipped entries added (as head)" in seeded.stdout, seeded.output
    result = cli(
        "fire", started, "refer", *HEAD,
        "-s", "referral_body=police_ombudsperson", "-s", "referral_shares=evidence",
    )  # fmt: skip
    line = assert_error(result, 3)
    assert "refer would share personal data (persons, summary): 1 of 1 person(s)" in line
    assert "REFUSED" in cli("history", started).stdout


def test_starting_with_invalid_data_exits_3(cli: Run) -> None:
    line = assert_error(cli("start", "complaint", *INTAKE, "-s", "source=nobody"), 3)
    assert "source: expected one of" in line


@pytest.mark.usefixtures("registers")
def test_a_stale_expected_version_exits_4(cli: Run, started: str) -> None:
    assert cli("fire", started, "acknowledge", *INTAKE, "--expect-version", "1").exit_code == 0
    result = cli("fire", started, "record", *INTAKE, *RECORD, "--expect-version", "1")
    line = assert_error(result, 4)
    assert "at version 2, not the expected 1" in line


@pytest.mark.parametrize(
    "args",
    [
        ["show", "no-such-id"],
        ["history", "no-such-id"],
        ["triggers", "no-such-id", "--role", "head"],
        ["fire", "no-such-id", "acknowledge", *INTAKE],
        ["audit", "export", "--instance", "no-such-id"],
        ["start", "complain", *INTAKE],
    ],
)
def test_not_found_exits_5(cli: Run, args: list[str]) -> None:
    assert cli("db", "upgrade").exit_code == 0  # a database that exists, without that instance
    line = assert_error(cli(*args), 5)
    assert "no instance no-such-id" in line or "no workflow complain" in line


def test_commands_refuse_invalid_definitions_with_exit_6(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BROKEN_A)
    assert invoke(["--db", db_url, "db", "upgrade"]).exit_code == 0
    result = invoke(["--db", db_url, "--workflows", str(tmp_path), "list"])
    line = assert_error(result, 6)
    assert "invalid workflow definition: " in line
    assert "more; `opcatflow validate PATH` lists them all" in line


def test_a_database_at_another_schema_revision_exits_7(cli: Run, db_url: str) -> None:
    assert cli("db", "upgrade").exit_code == 0
    store = SQLAlchemyStore(db_url)
    try:
        with store.connect(write=True) as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        store.close()
    line = assert_error(cli("list"), 7)
    assert "revision 9999" in line
    assert "opcatflow db upgrade" in line


def test_triggers_say_what_a_role_can_do_now(cli: Run, started: str) -> None:
    options = json.loads(cli("triggers", started, "--role", "intake", "--json").stdout)
    by_trigger = {o["trigger"]: o for o in options}
    assert by_trigger["acknowledge"]["ready"] is True
    assert by_trigger["record"]["ready"] is False
    assert "complaint_type" in by_trigger["record"]["blocked_by"]
    human = cli("triggers", started, "--role", "intake").stdout
    assert "record is blocked: missing required field(s)" in human


def test_list_filters_by_state_and_data(cli: Run, started: str) -> None:
    cli("start", "complaint", *INTAKE, "--data", json.dumps({**COMPLAINT, "channel": "mail"}))
    by_channel = json.loads(cli("list", "--where", "channel=during_visit", "--json").stdout)
    assert [started] == [i["id"] for i in by_channel["items"]]
    assert len(json.loads(cli("list", "--state", "received", "--json").stdout)["items"]) == 2
    assert json.loads(cli("list", "--state", "closed", "--json").stdout) == {
        "items": [],
        "more": 0,
        "next_cursor": None,
    }
    table = cli("list", "--workflow", "complaint").stdout.splitlines()
    assert table[0].split() == ["ID", "WORKFLOW", "STATE", "VERSION", "UPDATED", "(UTC)"]
    assert len(table) == 3


def test_history_is_a_timeline_with_personal_values_hashed(cli: Run, started: str) -> None:
    result = cli("history", started)
    assert result.exit_code == 0
    assert "m.okafor (intake)" in result.stdout
    assert "Ana Pereira" not in result.stdout
    records = json.loads(cli("history", started, "--json").stdout)
    assert records[0]["changes"]["summary"][1].startswith("hmac-sha256:")


def test_show_prints_the_data(cli: Run, started: str) -> None:
    result = cli("show", started)
    assert result.exit_code == 0
    assert re.search(r"^  state +received \(Received\)", result.stdout, re.M)
    assert "Ana Pereira" in result.stdout  # the instance keeps what the case needs


# -- audit and database --------------------------------------------------------------------


def test_audit_verify_reports_an_intact_chain(cli: Run, started: str) -> None:
    cli("fire", started, "acknowledge", *INTAKE)
    result = cli("audit", "verify")
    assert result.exit_code == 0
    report = json.loads(cli("audit", "verify", "--json").stdout)
    records = report["records"]  # the changes, and those of the obligations they changed
    assert f"audit chain unanchored: {records} records over 1 instance" in result.stdout
    assert (report["ok"], report["instances"], report["first_break"]) == (True, 1, None)


def test_audit_verify_names_the_first_broken_record_and_exits_8(
    cli: Run, db_url: str, started: str
) -> None:
    cli("fire", started, "acknowledge", *INTAKE)
    records = json.loads(cli("history", started, "--json").stdout)
    target = records[1]["id"]
    tamper(db_url, f"UPDATE audit SET actor = 'mallory' WHERE id = {target}")
    line = assert_error(cli("audit", "verify"), 8)
    assert f"audit record {target} (instance {started}, seq 2)" in line
    result = cli("audit", "verify", "--json")
    assert result.exit_code == 8
    assert target == json.loads(result.stdout)["first_break"]["id"]


def test_audit_export_writes_json_lines_without_personal_values(
    cli: Run, started: str, tmp_path: Path
) -> None:
    cli("fire", started, "acknowledge", *INTAKE)
    result = cli("audit", "export")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # the start, the acknowledgement, and the records of the obligations they changed
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
    assert [r["outcome"] for r in lines if r["outcome"] in ("started", "applied")] == [
        "started",
        "applied",
    ]
    assert "Ana Pereira" not in result.stdout
    target = tmp_path / "audit.jsonl"
    result = cli("audit", "export", "--output", str(target), "--instance", started, "--json")
    assert {"records": len(lines), "output": str(target)} == json.loads(result.stdout)
    assert len(target.read_text().splitlines()) == len(lines)


def test_db_upgrade_brings_an_empty_database_to_the_head_revision(cli: Run) -> None:
    result = cli("db", "upgrade", "--json")
    assert result.exit_code == 0, result.output
    revisions = json.loads(result.stdout)
    assert revisions["before"] is None
    assert "already at revision" in cli("db", "upgrade").stdout


# -- logging, debugging, the real process --------------------------------------------------


def test_logs_are_json_events_on_stderr(db_url: str) -> None:
    args = ["--db", db_url, "--log-format", "json", "--log-level", "info", "start", "complaint"]
    result = invoke([*args, *INTAKE, "--data", json.dumps(COMPLAINT), "--json"])
    assert result.exit_code == 0, result.output
    instance = json.loads(result.stdout)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [("instance_started", "info", instance["id"])] == [
        (e["event"], e["level"], e["instance_id"]) for e in events if e["event"] != "notice"
    ]
    # received 1 March: its acknowledgement was overdue from 8 March, and the caller is told
    # so, as an event too
    notices = [e["notice"] for e in events if e["event"] == "notice"]
    assert all("was already overdue" in n for n in notices)


def test_debug_lets_the_exception_through(cli: Run, db_url: str) -> None:
    assert cli("db", "upgrade").exit_code == 0
    result = invoke(["--db", db_url, "--debug", "show", "no-such-id"])
    assert isinstance(result.exception, InstanceNotFound)


def test_the_console_script_prints_one_line_and_exits_with_the_code(cli: Run, db_url: str) -> None:
    assert cli("db", "upgrade").exit_code == 0
    command = [sys.executable, "-m", "opcatflow.adapters.cli", "--db", db_url, "show", "nopenope"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 5
    assert done.stderr.splitlines() == ["error: no instance nopenope"]
    assert done.stdout == ""


# -- demo ----------------------------------------------------------------------------------


def test_demo_runs_a_complaint_and_ends_with_the_chain_verified(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = invoke(["demo", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    flat = " ".join(result.stdout.split())  # the timeline wraps to the terminal
    assert "REFUSED" in flat
    assert "1 of 1 person(s) have no active consent" in flat
    assert "opened referral" in flat
    assert "visit_team_by_register: expert Dr Ama Osei is not accredited and available" in flat
    assert "opened visit" in flat
    assert flat.count("opened recommendation") == 2
    report = json.loads(invoke(["--db", str(db), "audit", "verify", "--json"]).stdout)
    assert report["ok"] is True
    last = result.stdout.splitlines()[-1]
    assert last == (
        f"  ✓ {report['records']} records over {report['instances']} instances, "
        "every hash and link recomputed: sound, unanchored (`audit checkpoint` signs one to "
        "verify against)"
    )
    closed = json.loads(invoke(["--db", str(db), "list", "--state", "closed", "--json"]).stdout)
    assert len(closed["items"]) == 1


def test_demo_refuses_to_reuse_a_non_empty_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    db.write_text("precious")
    line = assert_error(invoke(["demo", "--db", str(db)]), 2)
    assert "not empty" in line
    assert db.read_text() == "precious"


def test_demo_defaults_to_a_new_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = invoke(["demo"])
    assert result.exit_code == 0, result.output
    [folder] = tmp_path.iterdir()
    assert folder.name.startswith("opcatflow-demo-")
    assert (folder / "demo.db").is_file()
