"""Embed the engine as a library: start and fire on a SQLite file, then exit 0.

Run by tests/test_embedding.py and by scripts/wheel-test (in a venv holding only the core
dependencies, with ``--core-only``: there FastAPI, Typer and psycopg must not be importable).
It must print nothing: an embedded engine given no logger stays silent.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from opcatflow.engine import Engine, Registry

WORKFLOW = """\
id: door
version: 1
title: A door
roles:
  keeper: Opens and closes the door
fields:
  note: {type: string}
start:
  writes: [note]
states:
  closed: {initial: true}
  open: {final: true}
transitions:
  - {trigger: open, source: closed, dest: open, roles: [keeper]}
"""


def main(core_only: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "door.yaml").write_text(WORKFLOW)
        with Engine.open(str(folder / "door.db"), [folder], Registry()) as engine:
            started = engine.start("door", actor="ana", role="keeper", data={"note": "n"})
            fired = engine.fire(started.id, "open", actor="ana", role="keeper")
            assert engine.get(started.id).state == "open", fired
    if core_only:
        present = [m for m in ("fastapi", "typer", "psycopg") if importlib.util.find_spec(m)]
        assert not present, f"the core install brought {present}"


if __name__ == "__main__":
    main(core_only="--core-only" in sys.argv[1:])
