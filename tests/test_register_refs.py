"""References to register entries (``type: ref``): refused on every write when the entry is
missing, retired or merged; chosen entry ids; ``engine.registers``. On every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opcatflow.adapters.views import instance_view, ref_ids
from opcatflow.engine import Engine, FrozenClock, InvalidData, Registry, TransitionRefused
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.loader import load_catalog
from opcatflow.engine.ports import Store

REGISTERS = Path(__file__).parent / "definitions" / "registers"
KEEPER = {"actor": "kim", "role": "keeper"}
OFFICER = {"actor": "oda", "role": "officer"}


@pytest.fixture
def eng(store: Store, clock: FrozenClock) -> Iterator[Engine]:
    registry = Registry()
    with Engine(store, load_catalog([REGISTERS], registry), registry, clock=clock) as engine:
        yield engine


def site(eng: Engine, entry_id: str, name: str, **data: object) -> str:
    return eng.start("site", instance_id=entry_id, data={"name": name, **data}, **KEEPER).id


def refused(call: object) -> TransitionRefused:
    assert callable(call)
    with pytest.raises(TransitionRefused) as caught:
        call()
    return caught.value


def test_a_register_entry_takes_a_chosen_id_once(eng: Engine) -> None:
    assert site(eng, "north-prison", "Northern Prison") == "north-prison"
    err = refused(lambda: site(eng, "north-prison", "Another"))
    assert err.kind == "data"
    assert "site 'north-prison' exists already" in err.reason
    with pytest.raises(InvalidData, match="not an entry id"):
        site(eng, "North Prison", "Bad id")
    with pytest.raises(InvalidData, match="only a register's entries take a chosen id"):
        eng.start("inspection", instance_id="my-case", data={"site": "north-prison"}, **OFFICER)
    # without a chosen id, an entry gets a uuid like every instance
    assert len(eng.start("site", data={"name": "Somewhere"}, **KEEPER).id) == 36


def test_a_start_naming_a_missing_retired_or_merged_entry_is_refused(eng: Engine) -> None:
    site(eng, "p-3", "Central Jail")
    site(eng, "p-17", "Old Jail")
    site(eng, "p-18", "Jail (duplicate)")
    eng.fire(
        "p-17",
        "retire",
        data={"retired_on": "2025-06-30", "retired_reason": "demolished"},
        **KEEPER,
    )
    eng.fire("p-18", "merge_into", data={"merged_into": "p-3"}, **KEEPER)
    inspection = eng.start("inspection", data={"site": "p-3"}, **OFFICER)  # active: fine

    def start(ref: str) -> TransitionRefused:
        return refused(lambda: eng.start("inspection", data={"site": ref}, **OFFICER))

    for ref, reason in [
        ("p-99", "site: site 'p-99' is not in the site register"),
        ("p-17", "site: site 'p-17' is retired (closed on 2025-06-30)"),
        ("p-18", "site: site 'p-18' was merged into 'p-3'"),
        (inspection.id, f"site: site '{inspection.id}' is not in the site register"),
    ]:
        err = start(ref)
        assert (err.kind, err.reason) == ("data", reason)
    # a register's own references are checked too: merging into a retired entry
    err = refused(lambda: eng.fire("p-3", "merge_into", data={"merged_into": "p-17"}, **KEEPER))
    assert "merged_into: site 'p-17' is retired" in err.reason


def test_a_fire_adding_a_bad_reference_is_refused_and_audited(eng: Engine) -> None:
    site(eng, "a", "A")
    site(eng, "b", "B")
    case = eng.start("inspection", data={"site": "a", "also_seen": ["b"]}, **OFFICER)
    eng.fire("b", "retire", data={"retired_on": "2026-01-31", "retired_reason": "x"}, **KEEPER)
    # a list, a records sub-field: each id the write adds is checked
    err = refused(lambda: eng.fire(case.id, "edit", data={"also_seen": ["b", "zz"]}, **OFFICER))
    assert err.reason == "also_seen: site 'zz' is not in the site register"
    change = {"notes": {"append": [{"where": "b", "text": "seen from the road"}]}}
    err = refused(lambda: eng.fire(case.id, "edit", data=change, **OFFICER))
    assert err.reason == "notes.where: site 'b' is retired (closed on 2026-01-31)"
    history = eng.history(case.id)
    assert [r.outcome for r in history[-2:]] == ["refused", "refused"]
    assert eng.get(case.id).data["also_seen"] == ["b"]  # nothing written
    # an id stored before the entry was retired stays, and does not block other writes
    eng.fire(case.id, "edit", data={"also_seen": ["b", "a"], "findings": ["f"]}, **OFFICER)
    assert eng.get(case.id).data["also_seen"] == ["b", "a"]


def test_an_opening_is_refused_when_the_child_would_name_a_retired_entry(eng: Engine) -> None:
    site(eng, "a", "A")
    case = eng.start("inspection", data={"site": "a", "findings": ["damp cells"]}, **OFFICER)
    eng.fire("a", "retire", data={"retired_on": "2026-02-01", "retired_reason": "x"}, **KEEPER)
    err = refused(lambda: eng.fire(case.id, "report", **OFFICER))
    assert err.reason == "cannot open 'revisit': site: site 'a' is retired (closed on 2026-02-01)"
    assert eng.children(case.id) == []


def test_registers_resolve_follows_merges_and_lists_entries(eng: Engine) -> None:
    site(eng, "p-3", "Central Jail")
    site(eng, "p-4", "Eastern Jail")
    site(eng, "p-18", "Central jail")
    eng.fire("p-18", "merge_into", data={"merged_into": "p-3"}, **KEEPER)
    eng.fire("p-4", "retire", data={"retired_on": "2026-01-01", "retired_reason": "x"}, **KEEPER)
    entry = eng.registers.resolve("site", "p-18")
    assert entry is not None
    assert (entry.id, entry.title, entry.state, entry.retired) == (
        "p-3",
        "Central Jail",
        "active",
        False,
    )
    assert entry.as_ref() == {"id": "p-3", "title": "Central Jail"}
    assert eng.registers.resolve("site", "nope") is None
    closed = eng.registers.resolve("site", "p-4")
    assert closed is not None
    assert closed.retired
    assert [e.id for e in eng.registers.entries("site")] == ["p-3"]
    assert [e.id for e in eng.registers.entries("site", include_retired=True)] == ["p-3", "p-4"]


REGISTER = (REGISTERS / "site.yaml").read_text()


def problems(tmp_path: Path, **files: str) -> list[str]:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path], Registry())
    return [str(p) for p in caught.value.problems]


def test_validate_locates_ref_problems(tmp_path: Path) -> None:
    case = (REGISTERS / "revisit.yaml").read_text()
    found = problems(
        tmp_path,
        site=REGISTER,
        revisit=case.replace("{type: text}", "{type: text, register: site}"),
    )
    where = str(tmp_path / "revisit.yaml")
    assert found == [f"{where}:8:9: 'register' is only for ref fields (or lists of refs)"]


def test_validate_refuses_an_unknown_register_and_a_workflow_that_is_none(tmp_path: Path) -> None:
    case = (REGISTERS / "revisit.yaml").read_text()
    found = problems(
        tmp_path,
        site=REGISTER,
        revisit=case.replace("register: site, required", "register: sight, required"),
    )
    where = str(tmp_path / "revisit.yaml")
    assert found == [
        f"{where}:7:31: unknown register 'sight' (did you mean 'site'?) (registers: site)"
    ]
    found = problems(
        tmp_path,
        revisit=case.replace("register: site, required", "register: revisit, required"),
    )
    assert found == [
        f"{where}:7:31: workflow 'revisit' is not a register (it declares no 'register:')"
    ]


def test_validate_refuses_a_register_without_its_lifecycle(tmp_path: Path) -> None:
    broken = (
        REGISTER.replace("name: {type: string, required: true}", "name: {type: text}")
        .replace("  merged: {final: true}\n", "")
        .replace("  merged_into: {type: ref, register: site}\n", "")
        .replace("    dest: merged\n", "    dest: retired\n")
        .replace("    requires: [merged_into]\n", "")
    )
    found = problems(tmp_path, site=broken)
    assert any("the title field 'name' must be a required string field" in p for p in found)
    assert any("a register needs a final state 'merged'" in p for p in found)
    assert any("a register needs the field 'merged_into'" in p for p in found)


def test_views_show_a_reference_as_its_id_and_title(eng: Engine) -> None:
    site(eng, "p-3", "Central Jail")
    site(eng, "p-18", "Central jail (duplicate)")
    notes = [{"n": 1, "where": "p-18", "text": "t"}]
    case = eng.start(
        "inspection", data={"site": "p-18", "also_seen": ["p-3"], "notes": notes}, **OFFICER
    )
    eng.fire("p-18", "merge_into", data={"merged_into": "p-3"}, **KEEPER)
    wf = eng.workflow("inspection")
    entries = eng.registers.titles(ref_ids(case, wf))
    data = instance_view(case, wf, frozenset(), entries)["data"]
    central = {"id": "p-3", "title": "Central Jail"}  # the merged entry shows its survivor
    assert data["site"] == central
    assert data["also_seen"] == [central]
    assert data["notes"] == [{"n": 1, "where": central, "text": "t"}]
    assert eng.get(case.id).data["site"] == "p-18"  # the stored value is never rewritten
