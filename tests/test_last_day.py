"""The day a person reads: the same last day in `deadlines`, `calendar`, iCal, HTTP and the
message text, whether the NPM is six hours behind UTC (Mexico City) or thirteen ahead
(Auckland, in its summer).

The UPR stakeholder submission of a session starting 25 January 2027 is due six months
before: its last day is 25 July 2026 wherever the NPM is. That day ends at 06:00 UTC on 26
July in Mexico City and at 12:00 UTC on 25 July in Auckland, so a date read off the UTC
instant would differ between the two (and be wrong in Mexico City).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import icalendar
import pytest
import yaml
from http_server import LiveServer, live_server_fixture  # noqa: F401 (the fixture)
from notify_helpers import rows
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.templates import TemplateSet
from opcatflow.workflows import BUNDLED, registry

PEOPLE = {
    "people": [
        {"id": "a.diallo", "name": "Awa Diallo", "email": "a.diallo@npm.example",
         "locale": "es", "roles": ["member"]},
    ]
}  # fmt: skip
SESSION = {"cycle": 5, "session_number": 54, "session_start": "2027-01-25"}
LAST_DAY = "2026-07-25"
ENDS = {"America/Mexico_City": "2026-07-26T06:00:00+00:00", "Pacific/Auckland": "2026-07-25T12:00:00+00:00"}  # fmt: skip
CLEAN_ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_SETTINGS": None, "COLUMNS": "200"}


@pytest.mark.parametrize("zone", sorted(ENDS))
def test_every_reader_shows_the_same_last_day_in_mexico_city_and_auckland(
    zone: str, clock: FrozenClock, tmp_path: Path, live_server: LiveServer
) -> None:
    # One backend (a SQLite file): the zone decides the day, and the store round trip of a
    # stored last day is the obligation store contract's, on both backends.
    db_url = str(tmp_path / "npm.db")
    folder = tmp_path / "workflows"  # two workflows: each CLI call reads only their files
    folder.mkdir()
    # a cycle starts recommendations, which name places and themes of their registers
    for name in ("upr_cycle", "recommendation", "place", "theme", "authority"):
        (folder / f"{name}.yaml").write_text((BUNDLED / f"{name}.yaml").read_text())
    settings_file = tmp_path / "npm.yaml"
    settings_file.write_text(f"calendar: {{timezone: {zone}}}\n")
    clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    hooks = [OutboxWriter(parse_directory(yaml.safe_dump(PEOPLE), "<directory>"))]
    npm = Settings.load(settings_file)
    with Engine.open(db_url, [folder], registry, clock=clock, hooks=hooks, settings=npm) as engine:
        cycle = engine.start("upr_cycle", actor="a.diallo", role="member", data=SESSION).id
        [row] = [o for o in engine.obligations(cycle) if o.deadline == "stakeholder_submission"]
        assert (row.due_at.isoformat(), row.last_day) == (ENDS[zone], date(2026, 7, 25))

        # HTTP: due_on beside due_at, and the zone it is in
        _, token = ApiKeys(engine.store, clock).create("admin-actor", ["admin"])
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            page = httpx.get(
                f"{live_server.url}/deadlines",
                headers={"Authorization": f"Bearer {token}"},
                params={"workflow": "upr_cycle"},
            ).json()
        finally:
            live_server.slot.app = None
        [item] = [i for i in page["items"] if i["deadline"] == "stakeholder_submission"]
        due_at = datetime.fromisoformat(item["due_at"]).isoformat()
        assert (due_at, item["due_on"], page["timezone"]) == (ENDS[zone], LAST_DAY, zone)

        # the message text, rendered from the reminder the scheduler wrote to the outbox
        clock.set(datetime(2026, 7, 1, 9, tzinfo=UTC))
        Scheduler(engine).tick()
        [reminder] = [m for m in rows(engine) if m.event.endswith("stakeholder_submission")]
    context = reminder.payload["context"]
    assert context["event"]["due_on"] == LAST_DAY
    assert LAST_DAY in TemplateSet().render("deadline_reminder", "es", context).text

    cli_readers(db_url, settings_file, folder, zone, cycle, tmp_path)


def cli_readers(
    db_url: str, settings_file: Path, folder: Path, zone: str, cycle: str, tmp_path: Path
) -> None:
    """`deadlines` (JSON, table, iCal), `calendar` (JSON, table) and `show`."""

    def cli(*args: str) -> str:
        base = ["--db", db_url, "--settings", str(settings_file), "--no-bundled"]
        base += ["--workflows", str(folder)]
        result = CliRunner().invoke(app, [*base, *args], env=CLEAN_ENV)
        assert result.exit_code == 0, result.output
        return result.output

    now = ["--now", "2026-03-02T10:00+00:00"]
    listed = json.loads(cli("deadlines", "--workflow", "upr_cycle", "--json", *now))["items"]
    [entry] = [e for e in listed if e["deadline"] == "stakeholder_submission"]
    assert (entry["due_on"], entry["instance_id"]) == (LAST_DAY, cycle)
    table = cli("deadlines", "--workflow", "upr_cycle", *now).splitlines()
    assert table[0].startswith(f"LAST DAY ({zone})")
    [line] = [t for t in table if "stakeholder_submission" in t]
    assert line.startswith(LAST_DAY)
    assert cycle in line

    ics = tmp_path / "deadlines.ics"
    cli("deadlines", "--workflow", "upr_cycle", "--ical", str(ics), *now)
    events = icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    [event] = [e for e in events if "Stakeholder" in str(e["summary"])]
    assert event.decoded("dtstart") == date(2026, 7, 25)

    calendar = json.loads(cli("calendar", "--json"))
    [due] = [c for c in calendar if c["deadline"] == "stakeholder_submission"]
    assert due["due_on"] == LAST_DAY
    calendar_table = cli("calendar").splitlines()
    assert calendar_table[0].startswith(f"LAST DAY ({zone})")
    assert any(t.startswith(LAST_DAY) and cycle in t for t in calendar_table)
    shown = cli("show", cycle[:8])
    assert f"last days in {zone}" in shown
    assert f"{LAST_DAY}  stakeholder_submission" in shown
