"""``backup`` and ``restore`` (SQLite, through the command line): a copy taken while the engine
writes verifies against the witness; restoring an older copy states the positions it lost and
erases again what was erased since. The erasure journal and ``restore --in-place`` (what runs
after pg_restore) on both backends; PostgreSQL's refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_audit_anchor import TINY
from typer.testing import CliRunner, Result

from opcatflow.adapters.anchor import Anchor, signing_key
from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.crypto.providers import default_key_file
from opcatflow.engine.erasure import REAPPLIED_BY, erase, is_erased, reapply_erasures
from opcatflow.engine.erasure_journal import Erased, ErasureJournal, ErasureJournalError
from opcatflow.workflows import registry

Run = Callable[..., Result]


def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "tiny.yaml").write_text(TINY)
    return folder


def cli_for(db: str, folder: Path) -> Run:
    def run(*args: str) -> Result:
        return CliRunner().invoke(
            app, ["--db", db, "--no-bundled", "--workflows", str(folder), *args]
        )

    return run


def start(db: str, folder: Path, name: str) -> str:
    with Engine.open(db, [folder], registry) as engine:
        return engine.start("tiny", actor="cleo", role="clerk", data={"name": name}).id


def checkpoint(run: Run, witness: Path) -> dict[str, object]:
    taken = run("audit", "checkpoint", "--witness", str(witness), "--json")
    assert taken.exit_code == 0, taken.output
    found: dict[str, object] = json.loads(taken.stdout)
    return found


def test_restoring_an_older_backup_states_what_it_lost_and_erases_again(tmp_path: Path) -> None:
    folder, witness = workflows(tmp_path), tmp_path / "witness"
    db = str(tmp_path / "live.db")
    run = cli_for(db, folder)
    ana = start(db, folder, "Ana Quetzalcoatl")
    checkpoint(run, witness)

    # a backup while another engine keeps writing: one commit's state, sound and anchored
    stop, written = threading.Event(), []

    def write() -> None:
        with Engine.open(db, [folder], registry) as engine:
            while not stop.is_set() and len(written) < 200:
                written.append(engine.start("tiny", actor="w", role="clerk", data={"name": "W"}))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copy = tmp_path / "backup.db"
        taken = run("backup", str(copy), "--witness", str(witness), "--json")
    finally:
        stop.set()
        writer.join()
    assert taken.exit_code == 0, taken.output
    backed_up = json.loads(taken.stdout)
    assert backed_up["breaks"] == []
    assert backed_up["lost"] is None
    assert backed_up["summary"].startswith("nothing lost")
    n = backed_up["positions"]
    assert n >= 1  # Ana's start, and whatever the writer had committed by then
    again = run("backup", str(copy))
    assert again.exit_code == 2
    assert "never overwrites" in again.stderr

    # after the backup: Ana's case read (the read log's first entry), then erased, another
    # case started, a checkpoint of size m
    assert run("show", ana, "--actor", "cleo", "--role", "clerk").exit_code == 0
    erased = run(
        "erase", ana, "--actor", "dpo", "--role", "admin", "--reason", "request 12",
        "--legal-basis", "GDPR art. 17",
    )  # fmt: skip
    assert erased.exit_code == 0, erased.output
    start(db, folder, "Bo")
    m = checkpoint(run, witness)["checkpoint"]["size"]  # type: ignore[index]
    assert m > n

    restored = run("restore", str(copy), "--witness", str(witness))
    assert restored.exit_code == 0, restored.output
    assert f"lost positions {n + 1}..{m}" in restored.stdout
    assert "lost read-log positions 1..1" in restored.stdout
    assert f"erased again (erased after the backup): {ana}" in restored.stdout
    shown = run("show", ana, "--actor", "cleo", "--role", "clerk", "--json")
    assert shown.exit_code == 0, shown.output
    assert "Quetzalcoatl" not in shown.stdout
    with Engine.open(db, [folder], registry) as engine:
        assert is_erased(engine, ana)
        assert engine.history(ana)[-1].actor == REAPPLIED_BY
    # the new checkpoint holds; the one taken before the restore records the loss
    latest = sorted(witness.glob("checkpoint-*.json"), key=lambda p: p.stat().st_mtime)[-1]
    assert run("audit", "verify", "--checkpoint", str(latest)).exit_code == 0
    # and the next checkpoint goes on from the restored trail, not from the lost one
    following = checkpoint(run, witness)["path"]
    assert run("audit", "verify", "--checkpoint", str(following)).exit_code == 0


def test_a_file_that_is_not_a_backup_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    folder = workflows(tmp_path)
    db = str(tmp_path / "live.db")
    start(db, folder, "Ana")
    before = Path(db).read_bytes()
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    run = cli_for(db, folder)
    refused = run("restore", str(junk), "--witness", str(tmp_path / "w"))
    assert refused.exit_code == 2, refused.output
    assert "is not an SQLite database" in refused.stderr
    assert Path(db).read_bytes() == before
    neither = run("restore")
    assert neither.exit_code == 2
    assert "--in-place" in neither.stderr


def test_postgresql_is_pointed_at_pg_dump_and_pg_restore(tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the refusal is PostgreSQL's")
    folder = workflows(tmp_path)
    run = cli_for(db_url, folder)
    for args in (("backup", str(tmp_path / "b.dump")), ("restore", str(tmp_path / "b.dump"))):
        refused = run(*args)
        assert refused.exit_code == 2, refused.output
        assert "pg_dump --format=custom" in refused.stderr
        assert "restore --in-place" in refused.stderr
    assert not (tmp_path / "b.dump").exists()


# -- the erasure journal and what runs after any restore, on both backends -------------------


def test_an_erasure_is_journaled_beside_the_key_file_or_refused(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    folder = workflows(tmp_path)
    journal = ErasureJournal.beside(default_key_file())
    with Engine.open(db_url, [folder], registry, clock=clock) as engine:
        kept = engine.start("tiny", actor="c", role="clerk", data={"name": "Ana"}).id
        journal.path.mkdir(parents=True)  # a folder where the file should be: cannot append
        with pytest.raises(ErasureJournalError, match="cannot list the erasure"):
            erase(engine, kept, actor="dpo", role="admin", reason="r", legal_basis="art. 17")
        assert not is_erased(engine, kept)  # refused whole
        journal.path.rmdir()
        erase(engine, kept, actor="dpo", role="admin", reason="r", legal_basis="art. 17")
        assert journal.entries() == [Erased(kept, clock.now(), "art. 17")]
        assert "Ana" not in journal.path.read_text()
        # a listed instance this database still holds unerased (an older copy) is erased again
        other = engine.start("tiny", actor="c", role="clerk", data={"name": "Bo"}).id
        journal.append(Erased(other, clock.now(), "court order 7"))
        journal.append(Erased("not-in-this-copy", clock.now(), "art. 17"))
        [again] = reapply_erasures(engine, journal)
        assert again.instance_id == other
        assert engine.history(other)[-1].actor == REAPPLIED_BY
        assert reapply_erasures(engine, journal) == []  # once
    assert [e.instance_id for e in journal.entries()] == [kept, other, "not-in-this-copy"]


def test_restore_in_place_erases_again_checks_and_checkpoints(db_url: str, tmp_path: Path) -> None:
    folder, witness = workflows(tmp_path), tmp_path / "witness"
    run = cli_for(db_url, folder)
    ana = start(db_url, folder, "Ana")
    with Engine.open(db_url, [folder], registry) as engine:
        Anchor(engine, witness, signing_key()).take()
    ErasureJournal.beside(default_key_file()).append(
        Erased(ana, engine.clock.now(), "art. 17")
    )  # erased in the lost future of a pg_restore'd dump
    done = run("restore", "--in-place", "--witness", str(witness), "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["erased_again"] == [ana]
    assert report["summary"].startswith("nothing lost")
    assert report["checkpoint"] is not None
    assert run("audit", "verify", "--checkpoint", report["checkpoint"]).exit_code == 0
