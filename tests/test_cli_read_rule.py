"""The CLI's ``show --role`` and ``history --role`` withhold what the role may not read, by
the engine's read rule; and the CLI, a trusted operator tool, is refused a write the role
may not read like any other caller."""

from __future__ import annotations

import json

import pytest
from test_cli import Run, assert_error, cli  # noqa: F401

REPRISAL = {"origin": "npm_visit", "reported_on": "2026-03-01"}
CASEWORKER = ["--actor", "c.ines", "--role", "caseworker"]
COORDINATOR = ["--actor", "k.osei", "--role", "coordinator"]


def reprisal(cli: Run) -> str:  # noqa: F811
    data = {**REPRISAL, "persons_at_risk": ["Ana Pereira"]}
    result = cli("start", "reprisal", *CASEWORKER, "--data", json.dumps(data), "-q")
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip())


def test_show_as_a_role_withholds_every_field_it_may_not_read(cli: Run) -> None:  # noqa: F811
    case = reprisal(cli)
    shown = json.loads(cli("show", case, "--role", "coordinator", "--json").stdout)
    assert shown["data"]["persons_at_risk"] == ["[withheld]"]
    assert shown["data"]["allegation"] == "[withheld]"  # never set: withheld all the same
    assert shown["withheld"] == [
        "allegation",
        "allegations",  # only its personal sub-field (text) is withheld
        "do_no_harm",
        "persons_at_risk",
        "risk_assessment",
    ]
    human = cli("show", case, "--role", "coordinator").stdout
    assert "Ana Pereira" not in human
    assert "Ana Pereira" in cli("show", case, "--role", "caseworker").stdout
    assert "Ana Pereira" in cli("show", case).stdout  # the operator's view


def test_history_as_a_role_lists_withheld_fields_in_every_change(cli: Run) -> None:  # noqa: F811
    case = reprisal(cli)
    cli("fire", case, "notify_focal_point", *CASEWORKER)
    records = json.loads(cli("history", case, "--role", "coordinator", "--json").stdout)
    changes = [r for r in records if r["outcome"] in ("started", "applied")]
    withheld = ["[withheld]", "[withheld]"]
    assert [r["changes"].get("persons_at_risk") for r in changes] == [withheld] * len(changes)
    assert len(changes) == 2  # (the other records are its obligations': no data change)
    assert "Ana Pereira" not in cli("history", case, "--role", "coordinator").stdout


def test_a_role_the_workflow_does_not_know_is_a_usage_error(cli: Run) -> None:  # noqa: F811
    case = reprisal(cli)
    line = assert_error(cli("show", case, "--role", "warden"), 2)
    assert "workflow 'reprisal' has no role 'warden'" in line


def test_the_cli_may_not_write_a_field_its_role_may_not_read(cli: Run) -> None:  # noqa: F811
    case = reprisal(cli)
    guess = json.dumps({"persons_at_risk": ["Guessed Name"]})
    result = cli("fire", case, "notify_focal_point", *COORDINATOR, "--data", guess)
    line = assert_error(result, 3)
    assert "may not write persons_at_risk (it may not read it)" in line
    assert "Guessed Name" not in cli("audit", "export").stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the engine's rule: both
def test_show_and_history_as_the_liaison_withhold_an_unannounced_visits_dates(
    cli: Run,  # noqa: F811
) -> None:
    place = {"name": "Prison A", "place_type": "prison"}
    cli("start", "place", *COORDINATOR, "--id", "prison-a", "--data", json.dumps(place), "-q")
    data = {"kind": "regular", "place": "prison-a", "unannounced": True, "planned_on": "2026-05-04"}
    started = cli("start", "visit", *COORDINATOR, "--data", json.dumps(data), "-q")
    visit = started.stdout.strip()
    shown = json.loads(cli("show", visit, "--role", "liaison", "--json").stdout)
    assert shown["data"]["planned_on"] == "[withheld]"
    assert "2026-05-04" not in cli("history", visit, "--role", "liaison", "--json").stdout
