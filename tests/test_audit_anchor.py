"""``audit checkpoint``, ``audit verify --checkpoint`` and the reference verifier, through the
command line; the worker's checkpoint job and its alert, also through a running ``worker``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from test_catalogue import wait_for
from test_cli_serve import environment
from typer.testing import CliRunner, Result

from opcatflow.adapters.anchor import Anchor, signing_key
from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock, SQLAlchemyStore, reference_verifier
from opcatflow.engine.checkpoint import SigningKey, write_checkpoint
from opcatflow.workflows import registry

TINY = """\
id: tiny
version: 1
title: A case, small enough to load fast
roles: {clerk: Clerk}
personal_visible_to: [clerk]
start: {writes: [name]}
fields:
  name: {type: string, personal: true}
states:
  open: {initial: true}
  closed: {final: true}
transitions:
  - {trigger: close, source: open, dest: closed, roles: [clerk]}
"""
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def run(tmp_path: Path, db_url: str) -> Callable[..., Result]:
    """``opcatflow --db db_url --no-bundled --workflows <tiny> ARGS``, in process (the bundled
    set left out: loading it is most of a command's time)."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            app, ["--db", db_url, "--no-bundled", "--workflows", str(folder), *args]
        )

    return invoke


def reference(export: Path, checkpoint: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "opcatflow.engine.reference_verifier", str(export)]
    return subprocess.run(
        [*command, "--checkpoint", str(checkpoint)], capture_output=True, text=True, check=False
    )


def rewrite_actor(db: str, position: int) -> None:
    store = SQLAlchemyStore(db)
    try:
        with store.connect(write=True) as conn:
            if store.dialect == "postgresql":
                conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
            else:
                conn.exec_driver_sql("DROP TRIGGER audit_append_only_update")
            conn.execute(
                sa.text("UPDATE audit SET actor = 'mallory' WHERE position = :p"), {"p": position}
            )
    finally:
        store.close()


def export(db_url: str, folder: Path, to: Path) -> None:
    with Engine.open(db_url, [folder], registry) as engine, to.open("w") as fh:
        engine.export_audit(fh)


def test_verify_against_a_checkpoint_and_the_reference_verifier_agree(
    run: Callable[..., Result], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "workflows"
    with Engine.open(db_url, [folder], registry) as engine:
        engine.start("tiny", actor="cleo", role="clerk", data={"name": "Ana"})
    taken = run("audit", "checkpoint", "--witness", str(tmp_path / "w"), "--json")
    assert taken.exit_code == 0, taken.output
    checkpoint = Path(json.loads(taken.stdout)["path"])
    assert checkpoint.parent == tmp_path / "w"
    size = json.loads(taken.stdout)["checkpoint"]["size"]
    assert size >= 1

    anchored = run("audit", "verify", "--checkpoint", str(checkpoint))
    assert anchored.exit_code == 0, anchored.output
    assert "intact" in anchored.stdout
    assert f"anchored to the checkpoint of position {size}" in anchored.stdout
    trail = tmp_path / "audit.jsonl"
    export(db_url, folder, trail)
    valid = reference(trail, checkpoint)
    assert (valid.returncode, valid.stdout.split(":")[0]) == (0, "intact"), valid.stderr

    rewrite_actor(db_url, 1)
    broken = run("audit", "verify", "--checkpoint", str(checkpoint), "--json")
    assert broken.exit_code == 8
    assert json.loads(broken.stdout)["first_break"]["position"] == 1
    export(db_url, folder, trail)
    # in process this time (the module is the same program: no second interpreter to start)
    assert reference_verifier.main([str(trail), "--checkpoint", str(checkpoint)]) == 8
    assert capsys.readouterr().out.startswith("broken: position 1 ")


def test_a_checkpoint_from_another_key_or_edited_is_refused(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    ours = write_checkpoint(tmp_path, signing_key().sign(0, "0" * 64, WHEN))
    doc = json.loads(ours.read_text())
    doc["checkpoint"]["size"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    result = run("audit", "verify", "--checkpoint", str(edited))
    assert result.exit_code == 2
    assert "signature does not verify" in result.stderr
    stranger = SigningKey(tmp_path / "other.signing").sign(0, "0" * 64, WHEN)
    foreign = write_checkpoint(tmp_path / "foreign", stranger)
    result = run("audit", "verify", "--checkpoint", str(foreign))
    assert result.exit_code == 2
    assert "not by this deployment's key" in result.stderr


def test_the_worker_job_alerts_when_the_witness_cannot_be_written(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the witness folder should be")
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY)
    with Engine.open(db_url, [folder], registry, clock=clock) as engine:
        engine.log = structlog.get_logger("opcatflow")
        anchor = Anchor(engine, blocked / "checkpoints", SigningKey(tmp_path / "signing"))
        with structlog.testing.capture_logs() as logs:
            anchor.job(60).func()
            Anchor(engine, tmp_path / "w", anchor.key).take_or_alert()
        # the next one starts from the witness's latest: same root as from the start
        engine.start("tiny", actor="cleo", role="clerk", data={"name": "Ana"})
        second, _ = Anchor(engine, tmp_path / "w", anchor.key).take()
        assert (second.size, second.root) == engine.audit_root()
        assert engine.verify_audit([second]).status == "intact"
    failed = [e for e in logs if e["event"] == "audit_checkpoint_failed"]
    assert [e["log_level"] for e in failed] == ["error"]
    assert [e["event"] for e in logs if e["event"] == "audit_checkpoint_written"]
    assert len(list((tmp_path / "w").glob("checkpoint-*.json"))) == 2


def test_db_grant_refuses_sqlite(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    assert CliRunner().invoke(app, ["--db", db, "db", "upgrade"]).exit_code == 0
    result = CliRunner().invoke(app, ["--db", db, "db", "grant", "app"])
    assert result.exit_code == 2
    assert "PostgreSQL" in result.stderr


# -- the worker as a process --------------------------------------------------------------------


def start_worker(tmp_path: Path, witness: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``opcatflow worker --checkpoint-every 1 --witness WITNESS`` on a SQLite file holding one
    tiny case; its JSON log goes to the returned file."""
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "tiny.yaml").write_text(TINY)
    db = str(tmp_path / "opcatflow.db")
    with Engine.open(db, [folder], registry) as engine:
        engine.start("tiny", actor="cleo", role="clerk", data={"name": "Ana"})
    command = [sys.executable, "-m", "opcatflow.adapters.cli", "--db", db, "--no-bundled"]
    command += ["--log-level", "info", "--log-format", "json", "--workflows", str(folder)]
    command += ["worker", "--checkpoint-every", "1", "--witness", str(witness)]
    log = tmp_path / "worker.log"
    with log.open("wb") as err:  # environment(): the test's OPCATFLOW_KEY_FILE, nothing else
        process = subprocess.Popen(
            command, env=environment(), stdout=subprocess.DEVNULL, stderr=err
        )
    return process, log


def logged(log: Path, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def stop_worker(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    assert process.returncode == 0, log.read_text()


def test_the_worker_signs_a_checkpoint_into_the_witness(tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    process, log = start_worker(tmp_path, witness)
    try:
        wait_for(lambda: any(witness.glob("checkpoint-*.json")), "no checkpoint in the witness")
        assert process.poll() is None  # still running
    finally:
        stop_worker(process, log)
    written = sorted(witness.glob("checkpoint-*.json"))[0]
    assert logged(log, "audit_checkpoint_written")
    # signed with this deployment's key, and the trail it describes verifies against it
    db, folder = str(tmp_path / "opcatflow.db"), str(tmp_path / "workflows")
    command = ["--db", db, "--no-bundled", "--workflows", folder, "audit", "verify"]
    verified = CliRunner().invoke(app, [*command, "--checkpoint", str(written)])
    assert verified.exit_code == 0, verified.output
    assert "anchored to the checkpoint of position 1" in verified.stdout


def test_the_worker_logs_an_error_when_the_witness_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the witness folder should be")
    process, log = start_worker(tmp_path, blocked / "checkpoints")
    try:
        wait_for(lambda: bool(logged(log, "audit_checkpoint_failed")), "no alert logged")
        assert process.poll() is None  # the worker goes on: the alert is the log line
    finally:
        stop_worker(process, log)
    failed = logged(log, "audit_checkpoint_failed")[0]
    assert failed["level"] == "error"
    assert failed["witness"] == str(blocked / "checkpoints")
