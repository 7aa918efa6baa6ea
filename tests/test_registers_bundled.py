"""The bundled registers (place, authority, theme, person): amendments from a day with their
history, the values that held on a day, retirement, merges that references follow, and who
may do what. On both backends."""

from __future__ import annotations

from datetime import date

import pytest

from opcatflow.engine import Engine, TransitionRefused
from opcatflow.engine.registers import value_at

HEAD = {"actor": "hana", "role": "head"}
COORDINATOR = {"actor": "cole", "role": "coordinator"}
MEMBER = {"actor": "mia", "role": "member"}


def add(engine: Engine, register: str, entry_id: str, **data: object) -> str:
    return engine.start(register, instance_id=entry_id, data=data, **COORDINATOR).id


def test_a_renamed_place_is_reported_under_the_name_that_held_at_the_time(engine: Engine) -> None:
    add(engine, "authority", "moj", name="Ministry of Justice")
    add(engine, "authority", "moi", name="Ministry of the Interior")
    add(engine, "place", "p-1", name="Central Prison", place_type="prison", authority="moj")
    engine.fire(
        "p-1", "amend", data={"valid_from": "2025-07-01", "name": "Ana Lima Prison"}, **MEMBER
    )
    engine.fire(
        "p-1", "amend", data={"valid_from": "2026-01-01", "authority": "moi", "capacity": 300},
        **COORDINATOR,
    )  # fmt: skip
    place = engine.get("p-1")
    assert place.data["name"] == "Ana Lima Prison"
    assert "valid_from" not in place.data  # each amendment gives its own
    assert [(h["n"], h["valid_from"], h["field"]) for h in place.data["history"]] == [
        (1, "2025-07-01", "name"),
        (2, "2026-01-01", "authority"),
        (3, "2026-01-01", "capacity"),
    ]

    def on(day: str) -> tuple[str, object, object]:
        entry = engine.registers.resolve("place", "p-1", at=date.fromisoformat(day))
        assert entry is not None
        return entry.title, entry.data.get("authority"), entry.data.get("capacity")

    assert on("2025-03-01") == ("Central Prison", "moj", None)
    assert on("2025-06-30") == ("Central Prison", "moj", None)
    assert on("2025-07-01") == ("Ana Lima Prison", "moj", None)
    assert on("2026-02-01") == ("Ana Lima Prison", "moi", 300)
    assert value_at(place.data, date(2025, 1, 1))["name"] == "Central Prison"


def test_amendments_are_entered_in_order_and_their_history_is_nobody_s_to_write(
    engine: Engine,
) -> None:
    add(engine, "theme", "health", name="Health care")
    engine.fire("health", "amend", data={"valid_from": "2026-02-01", "name": "Health"}, **HEAD)
    with pytest.raises(TransitionRefused, match="before the last amendment's"):
        engine.fire("health", "amend", data={"valid_from": "2026-01-01", "name": "H"}, **HEAD)
    with pytest.raises(TransitionRefused, match="changes at least one field"):
        engine.fire("health", "amend", data={"valid_from": "2026-03-01"}, **HEAD)
    forged = [{"n": 1, "valid_from": "2020-01-01", "field": "name", "before": '"X"'}]
    with pytest.raises(TransitionRefused) as err:
        engine.fire("health", "amend", data={"valid_from": "2026-03-01", "history": forged}, **HEAD)
    assert err.value.kind == "data"
    assert "may not write history" in err.value.reason


def test_a_retired_entry_cannot_be_referred_to_and_a_merged_one_is_followed(engine: Engine) -> None:
    add(engine, "authority", "moj", name="Ministry of Justice")
    add(engine, "authority", "moj-dup", name="Ministry of justice")
    add(engine, "authority", "dcs", name="Directorate of Corrections", parent="moj-dup")
    add(engine, "authority", "old", name="Old Directorate")
    engine.fire(
        "old", "retire", data={"retired_on": "2025-12-31", "retired_reason": "dissolved"}, **HEAD
    )
    with pytest.raises(TransitionRefused) as err:
        add(
            engine,
            "place",
            "p-2",
            name="Youth Centre",
            place_type="juvenile_institution",
            authority="old",
        )
    assert err.value.reason == "authority: authority 'old' is retired (retired on 2025-12-31)"
    with pytest.raises(TransitionRefused, match="cannot be merged into itself"):
        engine.fire("moj-dup", "merge_into", data={"merged_into": "moj-dup"}, **HEAD)
    engine.fire("moj-dup", "merge_into", data={"merged_into": "moj"}, **HEAD)
    # the reference stored before the merge is kept, and read as the entry that stayed
    assert engine.get("dcs").data["parent"] == "moj-dup"
    parent = engine.registers.resolve("authority", "moj-dup")
    assert parent is not None
    assert (parent.id, parent.title) == ("moj", "Ministry of Justice")
    with pytest.raises(TransitionRefused, match="was merged into 'moj'"):
        add(engine, "place", "p-3", name="Jail", place_type="prison", authority="moj-dup")
    # a place closes: its label is "closed"
    add(engine, "place", "p-4", name="Old Jail", place_type="prison")
    engine.fire(
        "p-4",
        "retire",
        data={"retired_on": "2026-01-31", "retired_reason": "closed"},
        **COORDINATOR,
    )
    assert engine.get("p-4").state == "retired"


def test_who_may_keep_the_registers(engine: Engine) -> None:
    add(engine, "place", "p-1", name="Central Prison", place_type="prison")
    with pytest.raises(TransitionRefused) as err:
        engine.fire(
            "p-1", "retire", data={"retired_on": "2026-01-01", "retired_reason": "x"}, **MEMBER
        )
    assert err.value.kind == "role"
    # the sharing flags of an authority are the head's to set
    with pytest.raises(TransitionRefused, match="only head may write it"):
        add(engine, "authority", "ombud", name="Ombudsperson", receives_shared_data=True)
    engine.start(
        "authority", instance_id="ombud", data={"name": "Ombudsperson", "independent": True}, **HEAD
    )
    # a person's roles are the head's to give
    with pytest.raises(TransitionRefused, match="only head may write it"):
        add(engine, "person", "mia", name="Mia", person_kind="member", roles=["member"])
    engine.start(
        "person",
        instance_id="mia",
        data={"name": "Mia", "person_kind": "member", "roles": ["member"], "expertise": ["lawyer"]},
        **HEAD,
    )
    assert [e.id for e in engine.registers.entries("person")] == ["mia"]


def test_the_management_of_a_place_is_never_an_independent_body(engine: Engine) -> None:
    management = {"name": "Prison management", "kind": "management", "independent": True}
    with pytest.raises(TransitionRefused) as err:
        engine.start("authority", instance_id="mgmt", data=management, **HEAD)
    assert "a body of kind 'management' is never independent" in err.value.reason
    engine.start("authority", instance_id="mgmt", data={**management, "independent": False}, **HEAD)
    with pytest.raises(TransitionRefused, match="never independent"):
        engine.fire("mgmt", "amend", data={"valid_from": "2026-03-01", "independent": True}, **HEAD)
