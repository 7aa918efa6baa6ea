"""The read log under the checkpoints: each entry gets a position at commit, a checkpoint signs
the read log's size and root, and deleting or altering an entry (its triggers lifted, as its
owner can) fails ``audit verify --checkpoint`` (exit 8), on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_audit_anchor import TINY
from typer.testing import CliRunner

from opcatflow.adapters.anchor import Anchor, signing_key
from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, SQLAlchemyStore
from opcatflow.engine.readlog import read_log, record_reads
from opcatflow.engine.readlog_root import READ_LOG
from opcatflow.workflows import registry


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    found = tmp_path / "workflows"
    found.mkdir()
    (found / "tiny.yaml").write_text(TINY)
    return found


@pytest.fixture
def checkpoint(db_url: str, folder: Path, tmp_path: Path) -> Path:
    """Three reads of one case (one with a reason), then a checkpoint over them."""
    with Engine.open(db_url, [folder], registry) as engine:
        case = engine.start("tiny", actor="cleo", role="clerk", data={"name": "Ana"}).id
        for reader, reason in (("ines", None), ("omar", "complaint 12"), ("ines", None)):
            record_reads(
                engine, actor=reader, role="clerk", channel="cli", what="show",
                reads=[(case, ("name",))], reason=reason,
            )  # fmt: skip
        assert [e.position for e in read_log(engine)] == [1, 2, 3]
        taken, path = Anchor(engine, tmp_path / "witness", signing_key()).take()
        assert taken.reads is not None
        assert taken.reads[0] == 3
        assert engine.verify_audit([taken]).status == "intact"
    return path


def tamper(db_url: str, statement: str) -> None:
    store = SQLAlchemyStore(db_url)
    try:
        with store.connect(write=True) as conn:
            if store.dialect == "postgresql":
                conn.exec_driver_sql("ALTER TABLE read_log DISABLE TRIGGER read_log_append_only")
            else:
                conn.exec_driver_sql("DROP TRIGGER read_log_append_only_update")
                conn.exec_driver_sql("DROP TRIGGER read_log_append_only_delete")
            conn.execute(sa.text(statement))
    finally:
        store.close()


def verify(db_url: str, folder: Path, checkpoint: Path) -> tuple[int, dict[str, object]]:
    argv = ["--db", db_url, "--no-bundled", "--workflows", str(folder), "audit", "verify"]
    result = CliRunner().invoke(app, [*argv, "--checkpoint", str(checkpoint), "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("DELETE FROM read_log WHERE position = 2", "missing (next found: 3)"),
        (
            "UPDATE read_log SET actor = 'nobody' WHERE position = 1",
            "do not hash to the read-log root",
        ),
        ("DELETE FROM read_log WHERE position = 3", "the read log ends at position 2"),
    ],
    ids=["delete-middle", "alter", "truncate-tail"],
)
def test_a_deleted_or_altered_read_log_entry_fails_verify_against_the_checkpoint(
    db_url: str, folder: Path, checkpoint: Path, statement: str, problem: str
) -> None:
    tamper(db_url, statement)
    code, report = verify(db_url, folder, checkpoint)
    assert code == 8, report
    first = report["first_break"]
    assert isinstance(first, dict)
    assert first["trail"] == READ_LOG
    assert problem in first["problem"]


def test_an_untouched_read_log_verifies_and_the_next_checkpoint_goes_on_from_it(
    db_url: str, folder: Path, checkpoint: Path, tmp_path: Path
) -> None:
    code, report = verify(db_url, folder, checkpoint)
    assert (code, report["status"]) == (0, "intact")
    with Engine.open(db_url, [folder], registry) as engine:
        record_reads(
            engine, actor="ines", role="clerk", channel="cli", what="audit-export",
            reads=[(None, ("audit trail",))],
        )  # fmt: skip
        later, _ = Anchor(engine, tmp_path / "witness", signing_key()).take()
        assert later.reads == engine.read_log_root()
        assert later.reads is not None
        assert later.reads[0] == 4
        assert engine.verify_audit([later]).status == "intact"
