"""The same report as a terminal table, JSON, CSV, a self-contained HTML page and over HTTP
(``/reports/...``): every output publishes the same values; the page loads nothing from
elsewhere and shows no personal value. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_server import LiveServer, live_server_fixture  # noqa: F401 - the fixture
from reportkit import PERSONAL, REPORTS, ZONE, report_engine, seed, seeded_store
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.adapters.reports.grid import grid
from opcatflow.engine import FrozenClock
from opcatflow.engine.crypto.providers import KeyFile
from opcatflow.engine.sql import SQLAlchemyStore

PROBLEM = "application/problem+json"


@dataclass
class Seeded:
    db_url: str
    settings: Path
    clock: FrozenClock
    keys: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """The seeded year, once per backend (the tests only read it)."""
    folder = tmp_path_factory.mktemp("outputs")
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    settings = folder / "npm.yaml"
    settings.write_text(f"calendar: {{timezone: {ZONE}}}\n", encoding="utf-8")
    with seeded_store(request.param, folder, request) as (store, url):
        with report_engine(store, clock, keys=KeyFile(folder / "keys")) as engine:
            seed(engine, clock)
        yield Seeded(url, settings, clock, folder / "keys")


def cli(seeded: Seeded, *args: str) -> str:
    result = CliRunner().invoke(
        app,
        ["--db", seeded.db_url, "--no-bundled", "--workflows", str(REPORTS),
         "--settings", str(seeded.settings), "report", *args],
        env={"COLUMNS": "200", "OPCATFLOW_KEY_FILE": str(seeded.keys)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


def published(document: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    """Every published value of a report's JSON, as the CSV names it."""
    out = {}
    for table in document["tables"]:
        g = grid(table)
        n = len(table["dimensions"])
        for row in [*g.rows, g.totals]:
            label = " / ".join(v for v in row[:n] if v) or "total"
            for header, value in zip(g.headers[n:], row[n:], strict=True):
                out[(table["name"], label, header)] = value
    for rate in document["rates"]:
        for part in ("rate", "numerator", "denominator"):
            out[("rates", rate["name"], part)] = str(rate[part])
    return out


def from_csv(text: str) -> dict[tuple[str, str, str], str]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["table", "row", "column", "value"]
    return {(t, r, c): v for t, r, c, v in rows[1:]}


def html_cells(page: str) -> list[str]:
    found = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", page)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in found]


def contiguous(needle: list[str], haystack: list[str]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def test_table_json_csv_and_html_publish_the_same_values(seeded: Seeded) -> None:
    document = json.loads(cli(seeded, "annual", "--year", "2026", "--format", "json"))
    values = published(document)
    assert from_csv(cli(seeded, "annual", "--year", "2026", "--format", "csv")) == values
    text = cli(seeded, "annual", "--year", "2026")
    page = cli(seeded, "annual", "--year", "2026", "--format", "html")
    cells = html_cells(page)
    for table in document["tables"]:
        g = grid(table)
        assert table["title"] in text
        assert html.escape(table["title"]) in page
        expected = [c for row in (g.headers, *g.rows, g.totals) for c in row]
        assert contiguous(expected, cells)  # the page's table, cell for cell
        for row in [*g.rows, g.totals]:  # the terminal's line, value for value
            assert re.search(r"\s+".join(map(re.escape, (c for c in row if c))), text)
    for rate in document["rates"]:
        assert f"{rate['title']}: {rate['rate']}" in text


def test_the_html_page_loads_nothing_and_names_no_one(seeded: Seeded) -> None:
    page = cli(seeded, "annual", "--year", "2026", "--format", "html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert not re.search(r"(?i)https?:|//[a-z0-9]|\bsrc=|\bhref=|<script|<link|@import|url\(", page)
    for value in PERSONAL:
        assert value not in page
    recs = cli(seeded, "recommendations", "--by", "place,theme,status", "--format", "html")
    assert not re.search(r"(?i)https?:|\bsrc=|\bhref=|<script", recs)
    assert "Central Prison" in recs


def test_http_gives_the_numbers_the_command_line_gives(
    seeded: Seeded, live_server: LiveServer
) -> None:
    store = SQLAlchemyStore(seeded.db_url)
    with report_engine(store, seeded.clock, keys=KeyFile(seeded.keys)) as engine:
        keys = ApiKeys(engine.store, seeded.clock)
        clerk = {"Authorization": f"Bearer {keys.create('kim', ['clerk'])[1]}"}
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                answer = client.get("/reports/annual", params={"year": 2026}, headers=clerk)
                assert answer.status_code == 200, answer.text
                as_csv = client.get(
                    "/reports/annual", params={"year": 2026, "format": "csv"}, headers=clerk
                )
                page = client.get(
                    "/reports/annual", params={"year": 2026, "format": "html"}, headers=clerk
                )
                recs = client.get(
                    "/reports/recommendations",
                    params={"by": "authority,status", "year": 2026},
                    headers=clerk,
                )
                bad = client.get("/reports/recommendations", params={"by": "name"}, headers=clerk)
                anonymous = client.get("/reports/annual", params={"year": 2026})
                no_year = client.get("/reports/annual", headers=clerk)
        finally:
            live_server.slot.app = None
    cli_json = json.loads(cli(seeded, "annual", "--year", "2026", "--format", "json"))
    assert answer.json() == cli_json
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == cli(seeded, "annual", "--year", "2026", "--format", "csv")
    assert page.headers["content-type"].startswith("text/html")
    assert page.text == cli(seeded, "annual", "--year", "2026", "--format", "html")
    assert recs.json() == json.loads(
        cli(seeded, "recommendations", "--by", "authority,status", "--year", "2026",
            "--format", "json")
    )  # fmt: skip
    assert (bad.status_code, bad.headers["content-type"]) == (422, PROBLEM)
    assert "cannot count by 'name'" in bad.json()["detail"]
    assert anonymous.status_code == 401
    assert (no_year.status_code, no_year.headers["content-type"]) == (422, PROBLEM)


def test_bad_requests_exit_with_a_usage_error_and_one_line(seeded: Seeded) -> None:
    base = ["--db", seeded.db_url, "--no-bundled", "--workflows", str(REPORTS), "report"]
    runner = CliRunner(env={"OPCATFLOW_KEY_FILE": str(seeded.keys)})
    by = runner.invoke(app, [*base, "recommendations", "--by", "place,who"])
    assert by.exit_code == 2
    assert "cannot count by 'who'" in by.output
    assert "Traceback" not in by.output
    year = runner.invoke(app, [*base, "annual", "--year", "20"])
    assert year.exit_code == 2
    assert "a year from 1990" in year.output
    day = runner.invoke(app, [*base, "recommendations", "--on", "31/12/2026"])
    assert day.exit_code == 2
    nowhere = runner.invoke(app, [*base, "annual", "--year", "2026", "--output", "/no/such/x.csv"])
    assert nowhere.exit_code == 2
    assert "cannot write /no/such/x.csv" in nowhere.output


def test_output_writes_the_file_whole(seeded: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "annual.html"
    cli(seeded, "annual", "--year", "2026", "--format", "html", "--output", str(target))
    assert target.read_text(encoding="utf-8") == cli(
        seeded, "annual", "--year", "2026", "--format", "html"
    )
