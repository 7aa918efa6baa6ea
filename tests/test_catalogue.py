"""The definition lifecycle: --workflows adds to the bundled set, export round trip,
validate as the runtime loads and against the database, deploy to a running `serve`
(periodic check, SIGHUP, POST /admin/reload) without a restart, an invalid new file keeping
the old set, and a retired version refusing starts on every route while its instances go
on firing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_cli_serve import CLEAN_ENV, environment, serving
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock, TransitionRefused, VersionRetired
from opcatflow.engine.loader import load_catalog
from opcatflow.workflows import BUNDLED, registry

MEMO = """\
id: memo
version: {version}
title: Memo {version}
roles:
  clerk: Writes memos
start:
  writes: [text]
fields:
  text: {{type: string}}
states:
  draft: {{initial: true}}
  sent: {{}}
  filed: {{final: true}}
transitions:
  - {{trigger: send, source: draft, dest: sent, roles: [clerk]}}
  - {{trigger: file, source: sent, dest: filed, roles: [clerk]}}
"""
PARENT = """\
id: folder
version: 1
title: Folder
roles:
  clerk: Keeps folders
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - trigger: add_memo
    source: open
    dest: open
    roles: [clerk]
    opens: [{workflow: memo, reason: a memo in the folder}]
  - {trigger: close, source: open, dest: done, roles: [clerk]}
"""


def cli(db: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", db, *args], env=CLEAN_ENV)


def memo(folder: Path, version: int, name: str | None = None) -> Path:
    path = folder / (name or f"memo_v{version}.yaml")
    path.write_text(MEMO.format(version=version), "utf-8")
    return path


def test_workflows_add_to_the_bundled_set_and_export_round_trips(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    memo(mine, 1)
    listed = CliRunner().invoke(
        app, ["--workflows", str(mine), "validate", str(mine)], env=CLEAN_ENV
    )
    assert listed.exit_code == 0, listed.output
    exported = CliRunner().invoke(app, ["workflows", "export", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    args = ["--no-bundled", "--workflows", str(tmp_path / "out"), "validate"]
    checked = CliRunner().invoke(app, [*args, str(tmp_path / "out"), "--json"], env=CLEAN_ENV)
    assert checked.exit_code == 0, checked.output
    fingerprints = {
        (w["id"], w["version"]): w["fingerprint"] for w in json.loads(checked.stdout)["workflows"]
    }
    bundled = {(wf.id, wf.version): wf.fingerprint for wf in load_catalog([BUNDLED], registry)}
    assert fingerprints == bundled
    # the same id and version with other content: both files named
    changed = (BUNDLED / "expert.yaml").read_text().replace("title: ", "title: Changed ", 1)
    (mine / "expert.yaml").write_text(changed)
    clash = CliRunner().invoke(
        app, ["--workflows", str(mine), "validate", str(mine / "expert.yaml")]
    )
    assert clash.exit_code == 6
    assert "expert.yaml:" in clash.output
    assert f"differently in {BUNDLED / 'expert.yaml'}" in clash.output
    nothing = CliRunner().invoke(app, ["--no-bundled", "validate", str(mine)])
    assert nothing.exit_code == 2


def test_validate_with_a_database_refuses_a_changed_stored_version(
    db_url: str, tmp_path: Path
) -> None:
    first = memo(tmp_path, 1)
    assert (
        cli(
            db_url, "--no-bundled", "--workflows", str(first), "workflows", "deploy", str(first)
        ).exit_code
        == 0
    )
    first.write_text(MEMO.format(version=1).replace("Writes memos", "Writes notes"))
    result = cli(
        db_url, "--no-bundled", "--workflows", str(first), "validate", "--db", db_url, str(first)
    )
    assert result.exit_code == 6
    assert (
        f"{first}:2:10: workflow 'memo' version 1 is already stored in the database"
        in result.output
    )
    assert "bump it (version: 2 is free)" in result.output
    refused = cli(
        db_url, "--no-bundled", "--workflows", str(first), "workflows", "deploy", str(first)
    )
    assert refused.exit_code == 6


def test_a_retired_version_refuses_starts_on_every_route_and_keeps_firing(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    memo(tmp_path, 1)
    (tmp_path / "folder.yaml").write_text(PARENT)
    with Engine.open(db_url, [tmp_path], registry, clock=clock) as engine:
        running = engine.start("memo", actor="ann", role="clerk")
        folder = engine.start("folder", actor="ann", role="clerk")
    assert (
        cli(
            db_url, "--no-bundled", "--workflows", str(tmp_path), "workflows", "retire", "memo", "1"
        ).exit_code
        == 0
    )
    with Engine.open(db_url, [tmp_path], registry, clock=clock) as engine:
        with pytest.raises(VersionRetired, match="memo version 1 is retired"):
            engine.start("memo", actor="ann", role="clerk")
        with pytest.raises(TransitionRefused, match="cannot open 'memo': version 1 is retired"):
            engine.fire(folder.id, "add_memo", actor="ann", role="clerk")
        assert engine.history(folder.id)[-1].outcome == "refused"
        assert engine.fire(running.id, "send", actor="ann", role="clerk").state == "sent"
    started = cli(
        db_url,
        "--no-bundled",
        "--workflows",
        str(tmp_path),
        "start",
        "memo",
        "--actor",
        "a",
        "--role",
        "clerk",
    )
    assert started.exit_code == 3
    assert "retired" in started.output
    listed = json.loads(
        cli(
            db_url, "--no-bundled", "--workflows", str(tmp_path), "workflows", "list", "--json"
        ).stdout
    )
    [line] = [x for x in listed if x["workflow"] == "memo"]
    assert (line["status"], line["starts"], line["running"]) == ("retired", False, 1)
    assert (
        cli(
            db_url,
            "--no-bundled",
            "--workflows",
            str(tmp_path),
            "workflows",
            "activate",
            "memo",
            "1",
        ).exit_code
        == 0
    )
    assert (
        cli(
            db_url,
            "--no-bundled",
            "--workflows",
            str(tmp_path),
            "start",
            "memo",
            "--actor",
            "a",
            "--role",
            "clerk",
        ).exit_code
        == 0
    )


def wait_for(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_running_serve_loads_deployed_versions_without_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "opcatflow.db")
    folder = tmp_path / "defs"
    folder.mkdir()
    assert cli(db, "db", "upgrade").exit_code == 0
    token = cli(
        db,
        "--no-bundled",
        "--workflows",
        str(folder),
        "apikey",
        "create",
        "--actor",
        "ops",
        "--role",
        "admin",
    ).stdout.strip()
    deployed = memo(tmp_path, 1)
    args = [
        "--db",
        db,
        "--no-bundled",
        "--workflows",
        str(folder),
        "serve",
        "--reload-check",
        "0.3",
    ]
    with serving(args, tmp_path) as (process, url):
        auth = {"Authorization": f"Bearer {token}"}

        def versions() -> dict[str, int]:
            found = httpx.get(f"{url}/workflows", headers=auth).json()
            return {w["id"]: w["version"] for w in found}

        def start() -> httpx.Response:
            body: dict[str, Any] = {"workflow": "memo", "role": "clerk", "data": {"text": "x"}}
            return httpx.post(f"{url}/instances", json=body, headers=clerk, timeout=30)

        # deployed to the database: the periodic check loads it
        deploy = ["--no-bundled", "--workflows", str(deployed), "workflows", "deploy"]
        assert cli(db, *deploy, str(deployed)).exit_code == 0
        wait_for(lambda: versions().get("memo") == 1, "the deployed version is not served")
        clerk_key = cli(
            db,
            "--no-bundled",
            "--workflows",
            str(deployed),
            "apikey",
            "create",
            "--actor",
            "c",
            "--role",
            "clerk",
        )
        clerk = {"Authorization": f"Bearer {clerk_key.stdout.strip()}"}
        first = start().json()
        # a new file and SIGHUP
        memo(folder, 2)
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: versions().get("memo") == 2, "SIGHUP did not load version 2")
        # an invalid new file: refused, the old set kept
        (folder / "broken.yaml").write_text(
            MEMO.format(version=3).replace("dest: filed", "dest: lost")
        )
        process.send_signal(signal.SIGHUP)
        refused = httpx.post(f"{url}/admin/reload", headers=auth, timeout=30)
        assert refused.status_code == 422
        assert refused.json()["type"] == "urn:opcatflow:problem:definitions-refused"
        assert any(
            f"{folder / 'broken.yaml'}:" in p and "lost" in p for p in refused.json()["problems"]
        )
        assert versions()["memo"] == 2
        # fixed: the endpoint loads it, and it runs at once
        (folder / "broken.yaml").unlink()
        memo(folder, 3)
        loaded = httpx.post(f"{url}/admin/reload", headers=auth, timeout=30)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["added"] == ["memo v3"]
        third = start().json()
        assert third["workflow_version"] == 3
        sent = httpx.post(
            f"{url}/instances/{third['id']}/transitions", json={"trigger": "send"}, headers=clerk
        )
        assert sent.status_code == 200, sent.text
        # every version retired: starts refused, running instances fire
        for v in (1, 2, 3):
            assert (
                cli(
                    db,
                    "--no-bundled",
                    "--workflows",
                    str(folder),
                    "workflows",
                    "retire",
                    "memo",
                    str(v),
                ).exit_code
                == 0
            )
        blocked = start()
        assert blocked.status_code == 409, blocked.text
        assert blocked.json()["kind"] == "retired"
        moved = httpx.post(
            f"{url}/instances/{first['id']}/transitions", json={"trigger": "send"}, headers=clerk
        )
        assert moved.status_code == 200, moved.text
    log = (process.log).read_text()  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in log.splitlines()]
    refusals = [line for line in lines if line["event"] == "definitions_reload_refused"]
    assert refusals
    assert any("broken.yaml:" in p for p in refusals[0]["problems"])


def catches_hangup(pid: int) -> bool:
    """Whether the process has a handler for SIGHUP yet (Linux: SigCgt in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGHUP - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_running_worker_loads_a_deployed_version_on_sighup(tmp_path: Path) -> None:
    db = str(tmp_path / "opcatflow.db")
    folder = tmp_path / "defs"
    folder.mkdir()
    memo(folder, 1)
    assert cli(db, "db", "upgrade").exit_code == 0
    log = tmp_path / "worker.log"
    # a periodic check far away: only SIGHUP can load what is deployed meanwhile
    command = [sys.executable, "-m", "opcatflow.adapters.cli", "--db", db, "--no-bundled"]
    command += ["--log-level", "info", "--log-format", "json"]
    command += ["--workflows", str(folder), "worker", "--reload-check", "3600"]
    with log.open("wb") as err:
        process = subprocess.Popen(
            command, env=environment(), stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        wait_for(lambda: catches_hangup(process.pid), "the worker set no SIGHUP handler")
        deployed = memo(tmp_path, 2)
        deploy = ["--no-bundled", "--workflows", str(folder), "workflows", "deploy"]
        assert cli(db, *deploy, str(deployed)).exit_code == 0
        process.send_signal(signal.SIGHUP)

        def reloaded() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in log.read_text().splitlines()]
            return [line for line in lines if line["event"] == "definitions_reloaded"]

        wait_for(lambda: bool(reloaded()), "SIGHUP did not reload the worker's definitions")
        assert reloaded()[0]["added"] == ["memo v2"]
        assert process.poll() is None  # still running
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0, log.read_text()
