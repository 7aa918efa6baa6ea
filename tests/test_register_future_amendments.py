"""An amendment entered ahead of its ``valid_from`` takes effect on that day: until then every
reader of a register entry "now" (``registers.resolve`` and ``entries``, the reference titles
views show, the rules reading entries through their lookup) sees the values of the NPM's
current day, in its time zone. On both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from casework import ASSESS, CASEWORKER, COMPLAINT, HEAD, INTAKE, RECORD, Desk

from opcatflow.adapters.views import instance_view, ref_ids
from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.engine.settings import Settings
from opcatflow.workflows import BUNDLED, registry

COORDINATOR = {"actor": "cole", "role": "coordinator"}
# The fixture clock is 2026-03-02 09:00 UTC: 22:00 of the same day in Auckland (UTC+13), whose
# next day starts two hours later, while it is still 2 March in UTC.
AUCKLAND = Settings.from_text("calendar: {timezone: Pacific/Auckland}\n", "npm.yaml")


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [BUNDLED], registry, clock=clock, settings=AUCKLAND) as eng:
        yield eng


def central_prison(engine: Engine) -> None:
    """Place ``p-1``, "Central Prison", under the authority ``moj``."""
    engine.start(
        "authority", instance_id="moj", data={"name": "Ministry of Justice"}, **COORDINATOR
    )
    place = {"name": "Central Prison", "place_type": "prison", "authority": "moj"}
    engine.start("place", instance_id="p-1", data=place, **COORDINATOR)


def names(engine: Engine) -> dict[str, str]:
    return {e.id: e.title for e in engine.registers.entries("place")}


def test_a_renaming_from_tomorrow_shows_from_tomorrow_in_the_npm_s_time_zone(
    engine: Engine, clock: FrozenClock
) -> None:
    central_prison(engine)
    visit = engine.start(
        "visit", data={"kind": "regular", "place": "p-1"}, actor="cole", role="coordinator"
    )
    engine.fire(
        "p-1", "amend", data={"valid_from": "2026-03-03", "name": "Ana Lima Prison"}, **COORDINATOR
    )
    stored = engine.get("p-1")
    assert stored.data["name"] == "Ana Lima Prison"  # stored at once, the history kept
    assert [h["valid_from"] for h in stored.data["history"]] == ["2026-03-03"]

    def view_title() -> object:
        wf = engine.workflow("visit")
        shown = engine.get(visit.id)
        entries = engine.registers.titles(ref_ids(shown, wf))
        return instance_view(shown, wf, frozenset(), entries)["data"]["place"]

    today = engine.registers.resolve("place", "p-1")
    assert today is not None
    assert today.title == "Central Prison"
    assert today.data["name"] == "Central Prison"
    assert not today.retired
    assert names(engine) == {"p-1": "Central Prison"}
    assert view_title() == {"id": "p-1", "title": "Central Prison"}

    clock.advance(timedelta(hours=2))  # 2 March 11:00 UTC: 3 March, midnight, in Auckland
    tomorrow = engine.registers.resolve("place", "p-1")
    assert tomorrow is not None
    assert tomorrow.title == "Ana Lima Prison"
    assert names(engine) == {"p-1": "Ana Lima Prison"}
    assert view_title() == {"id": "p-1", "title": "Ana Lima Prison"}
    assert engine.get("p-1") == stored  # reading changed nothing stored


def test_a_body_that_stops_receiving_data_from_tomorrow_still_receives_a_referral_today(
    db_url: str, clock: FrozenClock
) -> None:
    desk = Desk(db_url, clock)
    stop = {"valid_from": "2026-03-03", "receives_shared_data": False}
    desk.fire("nhri_complaints", "amend", HEAD, stop)
    refer = {"referral_body": "nhri_complaints", "referral_shares": "preliminary_findings"}

    def complaint() -> str:
        found = desk.start("complaint", INTAKE, COMPLAINT)
        desk.fire(found, "record", INTAKE, RECORD)
        desk.fire(found, "assess", CASEWORKER, ASSESS)
        return found

    today = complaint()
    desk.fire(today, "refer", HEAD, refer)  # the body still receives data today
    assert [c.workflow_id for c in desk.children(today)] == ["referral"]

    desk.later(days=1)
    later = complaint()
    refused = desk.refused(later, "refer", HEAD, refer)
    assert "nhri_complaints" in refused.reason


def test_a_role_given_from_tomorrow_reaches_the_person_from_tomorrow(
    engine: Engine, clock: FrozenClock
) -> None:
    from opcatflow.notifications.directory import parse_directory
    from opcatflow.notifications.people import PersonRegister, PersonRegisterDirectory

    person = {"name": "Lina Ferreira", "person_kind": "staff", "roles": ["caseworker"]}
    engine.start(
        "person", instance_id="l.ferreira", data={**person, "email": "lf@npm.example"},
        actor="rh", role="head",
    )  # fmt: skip
    engine.fire(
        "l.ferreira", "amend", data={"valid_from": "2026-03-03", "roles": ["head"]},
        actor="rh", role="head",
    )  # fmt: skip
    base = parse_directory("people: []\n", "<directory>")
    source = PersonRegisterDirectory(PersonRegister(engine.store, engine.today), base, interval=0)
    assert [p.key for p in source.current().with_role("complaint", "caseworker")] == ["l.ferreira"]
    assert source.current().with_role("complaint", "head") == []
    clock.advance(timedelta(hours=2))  # 3 March in Auckland
    assert [p.key for p in source.current().with_role("complaint", "head")] == ["l.ferreira"]


def test_a_closure_still_to_come_is_refused_and_the_place_stays_open_until_then(
    engine: Engine, clock: FrozenClock
) -> None:
    central_prison(engine)
    closing = {"retired_on": "2026-03-03", "retired_reason": "Moved to the new site"}
    with pytest.raises(TransitionRefused) as refused:
        engine.fire("p-1", "retire", data=closing, **COORDINATOR)  # 2 March in Auckland
    assert refused.value.kind == "data"
    assert "2026-03-03 is still to come" in refused.value.reason
    assert engine.get("p-1").state == "active"
    engine.start("visit", data={"kind": "regular", "place": "p-1"}, **COORDINATOR)  # referable
    clock.advance(timedelta(hours=2))  # 3 March there
    assert engine.fire("p-1", "retire", data=closing, **COORDINATOR).state == "retired"
