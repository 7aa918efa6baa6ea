"""`deadlines` a page at a time, with whole ids other commands take, filters that must name
something, and `deadlines rearm` (CLI on both backends; HTTP on both backends)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from http_server import ApiUnderTest, api_fixture, live_server_fixture  # noqa: F401 (fixtures)
from test_cli_deadlines import DEADLINES, run, started
from typer.testing import Result

from opcatflow.engine import Engine, FrozenClock, Registry
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings


def start_at(db: str, settings: Path, when: datetime, count: int = 1, **data: object) -> list[str]:
    npm = Settings.load(settings)
    with Engine.open(db, [DEADLINES], Registry(), clock=FrozenClock(when), settings=npm) as eng:
        return [
            eng.start("casefile", actor="ana", role="clerk", data=data).id for _ in range(count)
        ]


def usage_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    return result.output


def test_deadlines_page_with_a_cursor_say_how_many_more_and_print_ids_commands_take(
    db_url: str, tmp_path: Path
) -> None:
    settings, db = started(db_url, tmp_path)
    cases = start_at(db, settings, datetime(2026, 3, 2, 9, tzinfo=UTC), count=3)
    now = ["--now", "2026-03-03T00:00+00:00"]
    first = json.loads(run(db, settings, "deadlines", "--limit", "4", "--json", *now).output)
    assert (len(first["items"]), first["more"]) == (4, 2)  # reply and check of each case
    second = json.loads(
        run(db, settings, "deadlines", "--json", "--after", first["next_cursor"], *now).output
    )
    assert (len(second["items"]), second["more"], second["next_cursor"]) == (2, 0, None)
    seen = [(e["instance_id"], e["deadline"]) for e in first["items"] + second["items"]]
    assert sorted(seen) == sorted((c, d) for c in cases for d in ("reply", "check"))

    table = run(db, settings, "deadlines", "--limit", "4", *now).output.splitlines()
    assert table[0].split()[:3] == ["LAST", "DAY", "(Europe/Paris)"]
    assert table[-1] == f"2 more: repeat with --after {first['next_cursor']}"
    listed = table[1].split()[2]  # the whole id, as printed
    assert listed in cases
    assert listed in run(db, settings, "show", listed).output
    fired = run(db, settings, "fire", listed, "checked", "--actor", "ana", "--role", "clerk")
    assert fired.exit_code == 0, fired.output
    history = run(db, settings, "history", listed[:8]).output  # a prefix of 8 characters
    assert "checked" in history
    usage_error(run(db, settings, "deadlines", "--after", "bm90IGEgY3Vyc29y"))


def test_a_deadlines_filter_naming_nothing_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    # checked against the definitions before any row is read: one backend is enough
    settings, db = started(str(tmp_path / "filters.db"), tmp_path)
    assert "did you mean 'open'" in usage_error(run(db, settings, "deadlines", "--state", "opne"))
    assert "did you mean 'casefile'" in usage_error(
        run(db, settings, "deadlines", "--workflow", "casefil")
    )
    assert "did you mean 'clerk'" in usage_error(run(db, settings, "deadlines", "--role", "clerc"))


def test_rearm_counts_waiting_obligations_again_under_new_settings_audited(
    db_url: str, tmp_path: Path
) -> None:
    settings, db = started(db_url, tmp_path)
    # 23:30 UTC on 2 March is already 3 March in Paris, still 2 March in Mexico City
    # (blocked: its reply's escalation is refused, so the case stays where its check is owed)
    [case] = start_at(db, settings, datetime(2026, 3, 2, 23, 30, tzinfo=UTC), blocked=True)
    mexico = tmp_path / "mexico.yaml"
    mexico.write_text("calendar: {timezone: America/Mexico_City}\n")

    def check_day(npm: Path) -> str:
        out = run(db, npm, "deadlines", "--json", "--now", "2026-03-03T12:00+00:00").output
        [item] = [i for i in json.loads(out)["items"] if i["deadline"] == "check"]
        return str(item["due_on"])

    assert check_day(settings) == "2026-04-02"  # 30 days after 3 March, in Paris
    assert check_day(mexico) == "2026-04-02"  # another zone leaves an armed day as it is
    refused = run(db, mexico, "deadlines", "rearm", "--reason", " ", "--actor", "it", "--role", "x")
    usage_error(refused)  # a reason is required: re-arming is audited
    rearmed = run(
        db, mexico, "deadlines", "rearm", "--instance", case[:8], "--reason", "the NPM moved",
        "--actor", "it.admin", "--role", "admin", "--json", "--now", "2026-03-03T12:00+00:00",
    )  # fmt: skip
    assert rearmed.exit_code == 0, rearmed.output
    moved = json.loads(rearmed.output)
    assert sorted(
        (r["deadline"], r["was"], r["due_on"], r["overdue"]) for r in moved["rearmed"]
    ) == [
        ("check", "2026-04-02", "2026-04-01", False),  # from 2 March, Mexico City's day
        ("reply", "2026-03-17", "2026-03-16", False),
    ]
    assert check_day(mexico) == "2026-04-01"
    npm = Settings.load(mexico)
    clock = FrozenClock(datetime(2026, 4, 2, 7, tzinfo=UTC))  # after the new day, not the old
    with Engine.open(db, [DEADLINES], Registry(), clock=clock, settings=npm) as engine:
        Scheduler(engine).tick()
        [check] = [o for o in engine.obligations(case) if o.deadline == "check"]
        assert (check.status, check.last_day) == ("due", date(2026, 4, 1))
        [record] = [r for r in engine.history(case) if r.outcome == "rearmed" and
                    r.trigger == "check"]  # fmt: skip
    assert record.actor == "it.admin"
    assert record.reason is not None
    assert "the NPM moved" in record.reason
    assert "2026-04-02 -> 2026-04-01" in record.reason


def test_http_deadlines_page_with_next_cursor_and_refuse_unknown_filters(
    api: ApiUnderTest,
) -> None:
    cases = {api.start()["id"] for _ in range(3)}
    first = api.get("/deadlines", "admin", params={"limit": 2}).json()
    assert (len(first["items"]), first["more"]) == (2, 1)
    assert all(i["due_on"] == i["last_day"] for i in first["items"])
    second = api.get("/deadlines", "admin", params={"cursor": first["next_cursor"]}).json()
    assert (len(second["items"]), second["next_cursor"]) == (1, None)
    assert {i["instance_id"] for i in first["items"] + second["items"]} == cases

    def refused(params: dict[str, str], hint: str) -> None:
        answer: httpx.Response = api.get("/deadlines", "admin", params=params)
        assert answer.status_code == 422, answer.text
        assert hint in answer.json()["detail"]

    refused({"state": "opne"}, "did you mean 'open'")
    refused({"stat": "open"}, "unknown parameter 'stat'")
    refused({"role": "clerc"}, "did you mean 'clerk'")
    refused({"workflow": "casefil"}, "did you mean 'casefile'")
    assert api.get("/deadlines", "admin", params={"cursor": "bm9wZQ"}).status_code == 400
